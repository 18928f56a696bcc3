import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openDatabase } from "@/lib/db/client";
import { cacheState, health, prometheusMetrics } from "@/lib/http/opsHandlers";
import { metrics } from "@/lib/metrics";
import { withRequestLog } from "@/lib/http/route";
import { getTask } from "@/lib/http/taskHandlers";
import { TaskError } from "@/lib/tasks/errors";
import { TaskStore, type HealthReport } from "@/lib/taskStore";
import type { CacheState } from "@/app/cache/labClient";
import { BACKENDS, createTestEnv, makeCache, type TestEnv } from "../support/backends";
import { freePort } from "../support/redisServer";

const backend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!backend) throw new Error("no postgres + redis backend");

describe("health, metrics and request logging", () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv(backend);
  });
  afterAll(async () => {
    await env.cleanup();
  });

  test("GET /api/health is ok with both dependencies up, with latencies", async () => {
    const store = await env.openStore();
    const res = await health(async () => store);
    expect(res.status).toBe(200);
    const body = (await res.json()) as HealthReport;
    expect(body).toMatchObject({ status: "ok", db: { ok: true }, cache: { driver: "redis", ok: true, breaker: "closed" } });
    expect(body.db.latencyMs).toBeGreaterThanOrEqual(0);
    expect(body.cache.latencyMs).toBeGreaterThanOrEqual(0);
  });

  test("a cache outage is 200 degraded (the app still works)", async () => {
    const store = await env.openStore({ cache: { redisUrl: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 100 } });
    const res = await health(async () => store);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "degraded", db: { ok: true }, cache: { ok: false, latencyMs: null } });
  });

  test("Postgres unreachable is 503 with the same shape, whether the store is open or could not open", async () => {
    const database = await openDatabase({ kind: "postgres", url: `postgres://postgres@127.0.0.1:${await freePort()}/x`, poolMax: 1, prepare: true, timeoutMs: 1000 });
    const store = new TaskStore({ database, cache: makeCache("memory", "unused") });
    const res = await health(async () => store);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: "down", db: { ok: false, latencyMs: null }, cache: { driver: "memory" } });
    await store.close();
    const never = await health(async () => {
      throw new TaskError("service_unavailable", "The database is unavailable.");
    });
    expect(never.status).toBe(503);
    expect(await never.json()).toMatchObject({ status: "down", db: { ok: false }, cache: { ok: false } });
  });

  test("GET /api/metrics reports reads, cache calls, compare-and-set refusals, breaker, Postgres and HTTP timings", async () => {
    const store = await env.openStore({ observer: metrics().observer }); // as createTaskStoreFromEnv does
    const tasks = store.forUser(env.userId);
    const task = await tasks.create({ title: "measured" });
    await tasks.get(task.id);
    await tasks.update({ id: task.id, patch: { done: true } });
    const routed = withRequestLog("/api/tasks/[id]", (req: Request) => getTask(async () => tasks, req, String(task.id)));
    expect((await routed(new Request(`http://x/api/tasks/${task.id}`), undefined)).status).toBe(200);

    const res = await prometheusMetrics({ store: async () => store }, new Request("http://x/api/metrics"));
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^wt_cache_reads_total\{outcome="hit"\} [1-9]/m);
    expect(text).toMatch(/^wt_cache_calls_total\{operation="putTask",outcome="ok"\} [1-9]/m);
    expect(text).toMatch(/^wt_cache_call_duration_seconds_count\{operation="getTask"\} [1-9]/m);
    expect(text).toMatch(/^wt_cache_breaker_state 0$/m);
    expect(text).toMatch(/^wt_breaker_timeouts_total\{breaker="cache"\} 0$/m);
    expect(text).toMatch(/^wt_breaker_openings_total\{breaker="cache"\} 0$/m);
    expect(text).toMatch(/^wt_db_query_duration_seconds_count\{outcome="ok"\} [1-9]/m);
    expect(text).toMatch(/^wt_http_request_duration_seconds_count\{method="GET",route="\/api\/tasks\/\[id\]",status="200"\} [1-9]/m);
    expect(text).toMatch(/^wt_cache_repairs_total /m);
    expect(text).toMatch(/^wt_cache_breaker_transitions_total /m);
    expect(text).toMatch(/^wt_cache_cas_refusals_total \d+$/m);
    expect(text).toMatch(/^wt_db_statements_total\{origin="request"\} [1-9]/m);
    expect(text).toMatch(/^wt_db_statements_total\{origin="repair"\} \d+$/m);
  });

  test("with METRICS_TOKEN set, /api/metrics needs it as a bearer token", async () => {
    const store = await env.openStore();
    const ctx = { store: async () => store, metricsToken: "a-metrics-token-for-prom" };
    const without = await prometheusMetrics(ctx, new Request("http://x/api/metrics"));
    expect(without.status).toBe(401);
    expect(await without.json()).toMatchObject({ error: { code: "unauthorized" } });
    expect((await prometheusMetrics(ctx, new Request("http://x/api/metrics", { headers: { authorization: "Bearer a-metrics-token-for-pro" } }))).status).toBe(401);
    const withToken = await prometheusMetrics(ctx, new Request("http://x/api/metrics", { headers: { authorization: "Bearer a-metrics-token-for-prom" } }));
    expect(withToken.status).toBe(200);
    expect(await withToken.text()).toMatch(/^wt_cache_reads_total/m);
  });

  test("GET /api/cache/state shows the caller only their own counters, repairs and events", async () => {
    const store = await env.openStore();
    const [aliceId, bobId] = [await env.createUser("alice"), await env.createUser("bob")];
    const alice = store.forUser(aliceId);
    const task = await alice.create({ title: "alice's" });
    await alice.get(task.id);
    await alice.get(task.id);
    await alice.update({ id: task.id, patch: { done: true } });
    await store.ledger.recordTask(aliceId, task.id, false, new Error("injected"));
    await store.ledger.recordAuth(aliceId, "alice-session-token", new Error("injected"));
    await store.ledger.recordAuth("", "someone-unknown", new Error("injected")); // an owner better-auth didn't name
    const stateOf = async (userId: string) => {
      const ctx = { store: async () => store, principal: async () => ({ userId, via: "session" as const }) };
      const res = await cacheState(ctx, new Request(`http://x/api/cache/state?ids=${task.id}`));
      expect(res.status).toBe(200);
      return (await res.json()) as CacheState;
    };

    const bob = await stateOf(bobId);
    expect(bob).toMatchObject({ hitRatio: null, pendingRepairs: 0, events: [] });
    expect(Object.values(bob.counts).every((n) => n === 0)).toBe(true);
    expect(bob.tasks).toEqual([expect.objectContaining({ id: task.id, postgres: null })]); // her task is not his

    const mine = await stateOf(aliceId);
    expect(mine.counts).toMatchObject({ hit: 2, "write-through": 2, "repair-recorded": 2 });
    expect(mine.hitRatio).toBe(1);
    expect(mine.pendingRepairs).toBe(2);
    // Reads are in the feed beside writes (the lab shows miss → fill → hit as it happens).
    expect(mine.events.map((e) => e.kind)).toEqual(["repair-recorded", "repair-recorded", "write-through", "hit", "hit", "write-through"]);
    expect(mine.events.map((e) => e.seq)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(JSON.stringify(mine)).not.toContain("userId");
    expect(mine.events.filter((e) => e.detail?.startsWith("auth value"))).toHaveLength(1);

    // Bob's own events are numbered from 1: the numbers say nothing of anyone else's traffic.
    await store.forUser(bobId).create({ title: "bob's" });
    expect((await stateOf(bobId)).events).toEqual([expect.objectContaining({ seq: 1, kind: "write-through" })]);
  });

  test("every request gets an x-request-id: the caller's when valid, else a fresh one", async () => {
    const handler = withRequestLog("/test", async () => new Response("ok"));
    const echoed = await handler(new Request("http://x/", { headers: { "x-request-id": "abc-123" } }), undefined);
    expect(echoed.headers.get("x-request-id")).toBe("abc-123");
    const fresh = await handler(new Request("http://x/", { headers: { "x-request-id": "bad id with spaces" } }), undefined);
    expect(fresh.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("a handler that throws still answers a JSON 500 with a request id, never the error text", async () => {
    const handler = withRequestLog("/test", async () => {
      throw new Error("secret driver detail");
    });
    const res = await handler(new Request("http://x/"), undefined);
    expect(res.status).toBe(500);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(await res.text()).not.toContain("secret driver detail");
  });
});
