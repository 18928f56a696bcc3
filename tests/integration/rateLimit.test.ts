import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { actionTasksWith, limitedAuthHandler, tasksForWith, type Auth } from "@/lib/auth";
import { errorResponse } from "@/lib/http/responses";
import { createTask, listTasks } from "@/lib/http/taskHandlers";
import { clientAddress, forwardedForWithPeer, trustPeerAddress } from "@/lib/http/clientAddress";
import { parseRateRule } from "@/lib/env";
import { RateLimiter, type RateLimits } from "@/lib/rateLimit";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { freePort } from "../support/redisServer";
import { APP_ORIGIN, apiRequest, authRequest, newCredentials, sessionCookieOf, testAuth } from "../support/auth";

const LIMITS: RateLimits = {
  signInFailuresPerIp: { limit: 4, windowSeconds: 600 },
  signInFailuresPerEmail: { limit: 3, windowSeconds: 600 },
  signUpsPerIp: { limit: 2, windowSeconds: 3600 },
  writesPerUser: { limit: 5, windowSeconds: 60 },
};

/**
 * A real node http server with the peer-address hook installed (as instrumentation.ts installs it
 * on Next.js's), handing each request to `handle` as a web Request.
 */
async function serveWithPeerHook(trustedProxyHops: number, handle: (req: Request) => Promise<Response>) {
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      const response = await handle(new Request(`${APP_ORIGIN}${req.url}`, { method: req.method, headers, body }));
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    })();
  });
  trustPeerAddress(server, trustedProxyHops);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test("the client address is the socket's with no trusted proxy, and the outermost trusted proxy's entry behind proxies, whatever the client prepends", async () => {
  const sent: Array<string | undefined> = [undefined, "6.6.6.6", "6.6.6.6, 10.0.0.7", "6.6.6.6,7.7.7.7 , 10.0.0.7, 10.1.1.1"];
  const expected: Record<number, string[]> = {
    0: ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"],
    // The socket is the one proxy: the entry it appended names the client.
    1: ["127.0.0.1", "6.6.6.6", "10.0.0.7", "10.1.1.1"],
    // Fewer entries than proxies: the first.
    2: ["127.0.0.1", "6.6.6.6", "6.6.6.6", "10.0.0.7"],
  };
  for (const hops of [0, 1, 2]) {
    const server = await serveWithPeerHook(hops, async (req) => new Response(clientAddress(req, hops)));
    try {
      const seen = [];
      for (const header of sent) seen.push(await (await fetch(server.url, { headers: header === undefined ? {} : { "x-forwarded-for": header } })).text());
      expect(seen, `TRUSTED_PROXY_HOPS=${hops}`).toEqual(expected[hops]);
    } finally {
      await server.close();
    }
  }
  // A dual-stack listener names an IPv4 peer as IPv4-mapped IPv6; it is the same client.
  expect(forwardedForWithPeer("6.6.6.6", "::ffff:10.0.0.7", 0)).toBe("10.0.0.7");
  expect(forwardedForWithPeer(["6.6.6.6", "10.0.0.7"], "::1", 1)).toBe("6.6.6.6, 10.0.0.7, ::1");
});

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
    return limitedAuthHandler(req, auth, limiters[i]!).catch(errorResponse);
  }
  const wrongPassword = (email: string) => authRequest("/sign-in/email", { email, password: "wrong-password" });
  const asForm = (path: string, fields: Record<string, string>) =>
    new Request(`${APP_ORIGIN}/api/auth${path}`, { method: "POST", headers: { origin: APP_ORIGIN }, body: new URLSearchParams(fields) });
  const asMultipart = (path: string, fields: Record<string, string>) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.set(name, value);
    return new Request(`${APP_ORIGIN}/api/auth${path}`, { method: "POST", headers: { origin: APP_ORIGIN }, body: form });
  };

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

  test("a sign-in or sign-up sent as a form is refused with 415, even with the right password, and counts nothing", async () => {
    const person = newCredentials();
    const ip = "10.11.0.1";
    expect((await handled(0, from(ip, authRequest("/sign-up/email", person)))).status).toBe(200);
    // More wrong guesses as forms than either limit allows...
    for (let i = 0; i < LIMITS.signInFailuresPerIp.limit + 2; i++) {
      const form = i % 2 ? asMultipart : asForm;
      const refused = await errorOf(await handled(i % 2, from(ip, form("/sign-in/email", { email: person.email, password: "wrong-password" }))));
      expect(refused).toMatchObject({ status: 415, body: { error: { code: "unsupported_media_type" } } });
    }
    // ...left both budgets whole: every JSON guess the limits allow still reaches the password check.
    for (let i = 0; i < LIMITS.signInFailuresPerEmail.limit; i++) expect((await handled(i % 2, from(ip, wrongPassword(person.email)))).status).toBe(401);
    expect((await handled(0, from(ip, wrongPassword("someone-else@example.test")))).status).toBe(401);
    expect((await handled(1, from(ip, wrongPassword(person.email)))).status).toBe(429);
    // The account is locked now; the right password as a form does not get around that.
    for (const form of [asForm, asMultipart]) {
      expect((await handled(0, from("10.11.0.2", form("/sign-in/email", { email: person.email, password: person.password })))).status).toBe(415);
    }
    const other = newCredentials();
    expect((await handled(0, from("10.11.0.3", asForm("/sign-up/email", other)))).status).toBe(415);
    expect((await handled(0, from("10.11.0.3", authRequest("/sign-in/email", other)))).status).toBe(401);
  });

  test("parallel wrong passwords for one email get at most the limit of password checks; the rest are refused with 429", async () => {
    const person = newCredentials();
    expect((await handled(0, from("10.12.0.1", authRequest("/sign-up/email", person)))).status).toBe(200);
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => handled(i % 2, from(`10.12.1.${i}`, wrongPassword(person.email))).then((r) => r.status)));
    const checked = statuses.filter((s) => s === 401).length;
    expect(checked).toBeGreaterThan(0);
    expect(checked).toBeLessThanOrEqual(LIMITS.signInFailuresPerEmail.limit);
    expect(statuses.filter((s) => s === 429)).toHaveLength(statuses.length - checked);
  });

  test("successful sign-ins use up none of the failure budget, per address or per email", async () => {
    const person = newCredentials();
    const ip = "10.13.0.1";
    expect((await handled(0, from("10.13.0.2", authRequest("/sign-up/email", person)))).status).toBe(200);
    for (let i = 0; i < LIMITS.signInFailuresPerIp.limit + 1; i++) {
      expect((await handled(i % 2, from(ip, authRequest("/sign-in/email", { email: person.email, password: person.password })))).status).toBe(200);
    }
    for (let i = 0; i < LIMITS.signInFailuresPerEmail.limit; i++) expect((await handled(i % 2, from(ip, wrongPassword(person.email)))).status).toBe(401);
    expect((await handled(0, from(ip, wrongPassword(person.email)))).status).toBe(429);
  });

  test("X-Forwarded-For entries a client makes up don't move it to another per-address bucket (no trusted proxy)", async () => {
    const server = await serveWithPeerHook(0, (req) => handled(0, req));
    try {
      const guess = (i: number, forwardedFor: string) =>
        fetch(`${server.url}/api/auth/sign-in/email`, {
          method: "POST",
          headers: { "content-type": "application/json", origin: APP_ORIGIN, "x-forwarded-for": forwardedFor },
          body: JSON.stringify({ email: `spoofer${i}@example.test`, password: "wrong-password" }),
        });
      for (let i = 0; i < LIMITS.signInFailuresPerIp.limit; i++) expect((await guess(i, `10.14.${i}.1`)).status).toBe(401);
      for (const spoofed of ["10.14.9.9", "10.14.9.9, 10.14.9.8", "127.0.0.2"]) {
        const res = await guess(99, spoofed);
        expect(res.status, spoofed).toBe(429);
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      }
    } finally {
      await server.close();
    }
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

  test("server-action writes past the per-user limit are refused with rate_limited; reads are not limited", async () => {
    const cookie = sessionCookieOf(await handled(0, from("10.15.0.1", authRequest("/sign-up/email", newCredentials()))));
    const headers = new Headers({ cookie });
    const actionTasksOn = (i: number) => actionTasksWith({ store: async () => stores[i]!, auth: async () => auth, limiter: async () => limiters[i]! });
    for (let i = 0; i < LIMITS.writesPerUser.limit; i++) await (await actionTasksOn(i % 2)(headers, "write")).create({ title: `action write ${i}` });
    await expect(actionTasksOn(0)(headers, "write")).rejects.toMatchObject({ code: "rate_limited", message: expect.stringMatching(/Too many changes/), retryAfterSeconds: expect.any(Number) });
    for (let i = 0; i < 10; i++) expect((await (await actionTasksOn(i % 2)(headers, "read")).list({ limit: 50 })).tasks).toHaveLength(LIMITS.writesPerUser.limit);
  });

  test("a sign-up with a blank or overlong name is refused with a 400 naming the field", async () => {
    for (const name of ["   ", "n".repeat(101)]) {
      const res = await handled(0, from("10.4.4.4", authRequest("/sign-up/email", { ...newCredentials(), name })));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: "validation_failed", issues: [{ path: "name" }] } });
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
    expect(verdicts).toEqual([...Array<boolean>(LIMITS.writesPerUser.limit).fill(true), false]);
  } finally {
    await env.cleanup();
  }
});
