import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { repairCache } from "@/lib/http/opsHandlers";
import * as queries from "@/lib/tasks/queries";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { startPrivateRedis, type PrivateRedis } from "../support/redisServer";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy";

const backend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!backend) throw new Error("no postgres + redis backend");

describe("durable cache repair (cache_repairs table)", () => {
  let env: TestEnv;
  let redis: PrivateRedis;
  let proxy: TcpProxy;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    redis = await startPrivateRedis();
    proxy = await startTcpProxy({ host: "127.0.0.1", port: redis.port });
  });
  afterAll(async () => {
    await proxy.close();
    await redis.stop();
    await env.cleanup();
  });

  test("a write-through that failed on one instance is repaired by another, and the record is cleared", async () => {
    // Instance A reaches Redis through a proxy that will fail; instance B reaches it directly.
    const engineA = await env.openStore({ cache: { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 60_000 } });
    const engineB = await env.openStore({ cache: { redisUrl: redis.url } });
    const [a, b] = [engineA.forUser(env.userId), engineB.forUser(env.userId)];
    const task = await a.create({ title: "version one" });
    expect(await b.get(task.id)).toEqual({ task, cache: "HIT" });

    await proxy.setDown(true);
    const updated = await a.update({ id: task.id, patch: { title: "version two" } });
    // B still sees the old entry in Redis: the cache lags Postgres, and the repair is on record.
    expect((await engineB.cache!.driver.forUser(env.userId).getTask(task.id)).state).toBe("hit");
    expect(await queries.listCacheRepairs(engineB.database.db, { limit: 10 })).toEqual([
      expect.objectContaining({ kind: "task", userId: env.userId, taskId: task.id, indexDirty: false }),
    ]);

    expect(await engineB.repairNow()).toMatchObject({ repaired: 1 });
    expect(await b.get(task.id)).toEqual({ task: updated, cache: "HIT" });
    expect(await queries.listCacheRepairs(engineB.database.db, { limit: 10 })).toEqual([]);
    // A itself stays on Postgres while it cannot reach Redis, and answers the new version.
    expect(await a.get(task.id)).toEqual({ task: updated, cache: "BYPASS" });
    await proxy.setDown(false);
  });

  test("a repair of a deleted task tombstones it, and a failed create or delete drops the list index", async () => {
    const engineA = await env.openStore({ cache: { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 60_000 } });
    const engineB = await env.openStore({ cache: { redisUrl: redis.url } });
    const [a, b] = [engineA.forUser(env.userId), engineB.forUser(env.userId)];
    const slotB = engineB.cache!.driver.forUser(env.userId);
    const task = await b.create({ title: "deleted while A could not reach Redis" });
    await b.list({ limit: 10 });
    await a.get(task.id).catch(() => undefined);
    await proxy.setDown(true);
    await a.remove({ id: task.id });
    expect((await slotB.getTask(task.id)).state).toBe("hit"); // a ghost, until repaired
    await engineB.repairNow();
    expect((await slotB.getTask(task.id)).state).toBe("tombstone");
    expect(await slotB.readIndex().then((i) => i && i.views["all:new"])).toBeNull();
    await expect(b.get(task.id)).rejects.toMatchObject({ code: "not_found" });
    expect((await b.list({ limit: 10 })).tasks.map((t) => t.id)).not.toContain(task.id);
    expect((await engineB.audit(env.userId)).ok).toBe(true);
    await proxy.setDown(false);
  });

  test("one user's failed write-through sends only that user's reads to Postgres", async () => {
    const engine = await env.openStore({ cache: { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 100, breakerCooldownMs: 60_000 } });
    const alice = engine.forUser(await env.createUser("alice"));
    const bob = engine.forUser(await env.createUser("bob"));
    const bobs = await bob.create({ title: "bob's" });
    await bob.get(bobs.id);
    const alices = await alice.create({ title: "alice's" });
    // Only alice's write-through fails (the proxy drops it), then Redis is reachable again.
    await proxy.setDown(true);
    await alice.update({ id: alices.id, patch: { done: true } });
    await proxy.setDown(false);
    for (let i = 0; i < 100 && !(await engine.cache!.driver.ping().then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(engine.ledger.owes(alice.userId)).toBe(true);
    expect(engine.ledger.owes(bob.userId)).toBe(false);
    expect(await bob.get(bobs.id)).toMatchObject({ cache: "HIT" });
    // Alice's next read carries out her repair first, then uses the cache again.
    expect(await alice.get(alices.id)).toMatchObject({ task: { done: true, version: 2 } });
    expect(engine.ledger.owes(alice.userId)).toBe(false);
  });

  test("after an outage, a repair that keeps failing for one user doesn't keep another user's reads off the cache", async () => {
    // Two instances behind the proxy: W records alice's failed write-through; R (the one under
    // test) sees the same outage, so it must run a full pass, reading W's record, before it trusts
    // the cache again for anyone.
    const options = { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 3, breakerCooldownMs: 100 };
    const engineW = await env.openStore({ cache: options });
    const engineR = await env.openStore({ cache: options });
    const aliceId = await env.createUser("alice");
    const bobId = await env.createUser("bob");
    const [aliceW, aliceR, bobR] = [engineW.forUser(aliceId), engineR.forUser(aliceId), engineR.forUser(bobId)];
    const alices = await aliceW.create({ title: "alice's" });
    const bobs = await bobR.create({ title: "bob's" });
    expect(await bobR.get(bobs.id)).toMatchObject({ cache: "HIT" });

    await proxy.setDown(true);
    const updated = await aliceW.update({ id: alices.id, patch: { done: true } });
    for (let i = 0; i < 3; i++) expect(await bobR.get(bobs.id)).toMatchObject({ cache: "BYPASS" });
    expect(engineR.ledger.afterOutage).toBe(true);
    await proxy.setDown(false);
    // Alice's slot now fails every repair: her entry's key holds a hash, so the compare-and-set errors.
    const direct = new Redis(redis.url);
    const aliceKey = `${env.prefix}:{u:${aliceId}}:task:${alices.id}`;
    await direct.del(aliceKey);
    await direct.hset(aliceKey, "not", "a task");
    for (let i = 0; i < 100 && !(await engineR.cache!.driver.ping().then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 150)); // past the breaker's cooldown

    for (let round = 0; round < 3; round++) {
      expect(await bobR.get(bobs.id)).toMatchObject({ task: bobs, cache: "HIT" });
      await engineR.repairNow();
    }
    expect(engineR.ledger.afterOutage).toBe(false);
    // Alice's repair, read from W's record, is now owed by R too: her reads stay on Postgres and right.
    expect(engineR.ledger.owes(aliceId)).toBe(true);
    expect(await aliceR.get(alices.id)).toEqual({ task: updated, cache: "BYPASS" });
    expect(await queries.listCacheRepairs(engineR.database.db, { limit: 10, userId: aliceId })).toEqual([
      expect.objectContaining({ kind: "task", taskId: alices.id }),
    ]);
    // Once her slot can take writes again, the next pass repairs it and she is back on the cache.
    await direct.del(aliceKey);
    direct.disconnect();
    await engineR.repairNow();
    expect(engineR.ledger.owes(aliceId)).toBe(false);
    expect(await aliceR.get(alices.id)).toEqual({ task: updated, cache: "HIT" });
  });

  test("the repair route needs the CRON_SECRET (GET or POST) or an admin (POST only): 401 anonymous, 403 otherwise", async () => {
    const store = await env.openStore({ cache: { redisUrl: redis.url } });
    const secret = "s3cret-for-the-scheduler";
    const ctx = (principal: { userId: string; email: string } | null) => ({
      store: async () => store,
      principal: async () => (principal ? { ...principal, via: "session" as const } : null),
      cronSecret: secret,
      adminEmails: ["ops@example.test"],
    });
    const req = (method: string, auth?: string) =>
      new Request("http://x/api/cache/repair", { method, headers: auth ? { Authorization: auth } : {} });
    const status = async (res: Promise<Response>) => (await res).status;

    expect(await status(repairCache(ctx(null), req("GET")))).toBe(401);
    expect(await status(repairCache(ctx(null), req("POST")))).toBe(401);
    expect(await status(repairCache(ctx(null), req("POST", "Bearer wrong-secret-of-same-len")))).toBe(401);
    const someone = { userId: env.userId, email: "someone@example.test" };
    expect(await status(repairCache(ctx(someone), req("POST")))).toBe(403);
    const admin = { userId: env.userId, email: "OPS@example.test" };
    expect(await status(repairCache(ctx(admin), req("GET")))).toBe(403); // GET changes state only for schedulers
    const byAdmin = await repairCache(ctx(admin), req("POST"));
    expect(byAdmin.status).toBe(200);
    expect(await byAdmin.json()).toEqual({ repaired: 0, remaining: 0 });
    expect(await status(repairCache(ctx(null), req("GET", `Bearer ${secret}`)))).toBe(200);
    expect(await status(repairCache(ctx(null), req("POST", `Bearer ${secret}`)))).toBe(200);
  });
});
