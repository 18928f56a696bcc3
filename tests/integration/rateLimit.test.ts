import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { limitedAuthHandler, tasksForWith, type Auth } from "@/lib/auth";
import { createTask, listTasks } from "@/lib/http/taskHandlers";
import { RateLimiter, parseRateRule, type RateLimits } from "@/lib/rateLimit";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { freePort } from "../support/redisServer";
import { apiRequest, authRequest, newCredentials, sessionCookieOf, testAuth } from "../support/auth";

const LIMITS: RateLimits = {
  signInFailuresPerIp: { limit: 4, windowSeconds: 600 },
  signInFailuresPerEmail: { limit: 3, windowSeconds: 600 },
  signUpsPerIp: { limit: 2, windowSeconds: 3600 },
  writesPerUser: { limit: 5, windowSeconds: 60 },
};

test("limits are written count/window", () => {
  expect(parseRateRule("10/10m")).toEqual({ limit: 10, windowSeconds: 600 });
  expect(parseRateRule(" 600 / 1m ")).toEqual({ limit: 600, windowSeconds: 60 });
  expect(parseRateRule("5/1h")).toEqual({ limit: 5, windowSeconds: 3600 });
  for (const bad of ["10", "0/1m", "10/0m", "10/2d", "10/25h", "ten/1m", "-1/1m"]) expect(parseRateRule(bad), bad).toBeNull();
});

describe.each(BACKENDS)("abuse limits on $name", (backend) => {
  let env: TestEnv;
  let stores: TaskStore[];
  let auth: Auth;
  // Two limiters over two store instances, as two app servers: with Redis they share counters.
  let limiters: RateLimiter[];

  beforeAll(async () => {
    env = await createTestEnv(backend);
    stores = [await env.openStore(), await env.openStore()];
    auth = testAuth(stores[0]!);
    // With Redis, two instances share their counters. The memory driver is one process's cache:
    // there the counters are that process's, so both "instances" are the one limiter.
    const own = stores.map((s) => new RateLimiter({ limits: LIMITS, disabled: false, cache: s.cache }));
    limiters = backend.cacheDriver === "memory" ? [own[0]!, own[0]!] : own;
  });
  afterAll(async () => {
    await env.cleanup();
  });

  const from = (ip: string, req: Request) => {
    req.headers.set("x-forwarded-for", ip);
    return req;
  };
  const errorOf = async (res: Response) => ({ status: res.status, retryAfter: res.headers.get("retry-after"), body: (await res.json()) as unknown });

  async function handled(i: number, req: Request): Promise<Response> {
    const { errorResponse } = await import("@/lib/http/responses");
    return limitedAuthHandler(req, auth, limiters[i]!).catch(errorResponse);
  }

  test("failed sign-ins for one email are limited, whatever the address; then even the right password waits (429 + Retry-After)", async () => {
    const person = newCredentials();
    expect((await handled(0, from("10.0.0.1", authRequest("/sign-up/email", person)))).status).toBe(200);
    for (let i = 0; i < LIMITS.signInFailuresPerEmail.limit; i++) {
      const res = await handled(i % 2, from(`10.0.1.${i}`, authRequest("/sign-in/email", { email: person.email, password: "wrong-password" })));
      expect(res.status).toBe(401);
    }
    const blocked = await errorOf(await handled(0, from("10.0.2.1", authRequest("/sign-in/email", { email: person.email, password: person.password }))));
    expect(blocked.status).toBe(429);
    expect(blocked.body).toEqual({ error: { code: "rate_limited", message: expect.stringMatching(/sign-ins/) } });
    expect(Number(blocked.retryAfter)).toBeGreaterThan(0);
    expect(Number(blocked.retryAfter)).toBeLessThanOrEqual(600);
    // Another person is not affected.
    const other = newCredentials();
    expect((await handled(1, from("10.0.3.1", authRequest("/sign-up/email", other)))).status).toBe(200);
    expect((await handled(1, from("10.0.3.1", authRequest("/sign-in/email", other)))).status).toBe(200);
  });

  test("failed sign-ins from one address are limited across emails", async () => {
    const ip = "10.9.9.9";
    for (let i = 0; i < LIMITS.signInFailuresPerIp.limit; i++) {
      expect((await handled(i % 2, from(ip, authRequest("/sign-in/email", { email: `nobody${i}@example.test`, password: "whatever-123" })))).status).toBe(401);
    }
    expect((await handled(0, from(ip, authRequest("/sign-in/email", { email: "someone-else@example.test", password: "whatever-123" })))).status).toBe(429);
  });

  test("sign-ups from one address are limited", async () => {
    const ip = "10.7.7.7";
    for (let i = 0; i < LIMITS.signUpsPerIp.limit; i++) expect((await handled(i % 2, from(ip, authRequest("/sign-up/email", newCredentials())))).status).toBe(200);
    const refused = await errorOf(await handled(0, from(ip, authRequest("/sign-up/email", newCredentials()))));
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: { code: "rate_limited" } });
  });

  test("writes per user are limited and change nothing past the limit; reads are not limited", async () => {
    const signUp = await handled(0, from("10.5.5.5", authRequest("/sign-up/email", newCredentials())));
    const cookie = sessionCookieOf(signUp);
    const tasksOn = (i: number) => tasksForWith({ store: async () => stores[i]!, auth: async () => auth, limiter: async () => limiters[i]! });
    for (let i = 0; i < LIMITS.writesPerUser.limit; i++) {
      expect((await createTask(tasksOn(i % 2), apiRequest("POST", "/api/tasks", { cookie }, { title: `write ${i}` }))).status).toBe(201);
    }
    const refused = await errorOf(await createTask(tasksOn(0), apiRequest("POST", "/api/tasks", { cookie }, { title: "one too many" })));
    expect(refused).toMatchObject({ status: 429, body: { error: { code: "rate_limited" } } });
    const page = (await (await listTasks(tasksOn(1), apiRequest("GET", "/api/tasks", { cookie }))).json()) as { tasks: Array<{ title: string }> };
    expect(page.tasks.map((t) => t.title)).not.toContain("one too many");
    expect(page.tasks).toHaveLength(LIMITS.writesPerUser.limit);
    for (let i = 0; i < 10; i++) expect((await listTasks(tasksOn(0), apiRequest("GET", "/api/tasks", { cookie }))).status).toBe(200);
  });

  test("a sign-up with a blank or overlong name is refused with a 400 naming the field", async () => {
    for (const name of ["   ", "n".repeat(101)]) {
      const res = await handled(0, from("10.4.4.4", authRequest("/sign-up/email", { ...newCredentials(), name })));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: "validation_failed" } });
    }
  });

  test("RATE_LIMIT_DISABLED turns every limit off", async () => {
    const off = new RateLimiter({ limits: LIMITS, disabled: true, cache: stores[0]!.cache });
    for (let i = 0; i < 20; i++) expect(await off.hit("signUpsPerIp", "10.1.1.1")).toEqual({ allowed: true });
  });
});

test("with the cache unreachable, limits count in the process and never fail a request", async () => {
  const env = await createTestEnv(BACKENDS.find((b) => b.cacheDriver === "redis")!);
  try {
    const store = await env.openStore({ cache: { redisUrl: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 100, breakerFailures: 2 } });
    const limiter = new RateLimiter({ limits: LIMITS, disabled: false, cache: store.cache });
    const verdicts = [];
    for (let i = 0; i < LIMITS.writesPerUser.limit + 1; i++) verdicts.push((await limiter.hit("writesPerUser", "someone")).allowed);
    expect(verdicts).toEqual([...Array(LIMITS.writesPerUser.limit).fill(true), false]);
  } finally {
    await env.cleanup();
  }
});
