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
    const a = await env.openStore({ cache: { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 60_000 } });
    const b = await env.openStore({ cache: { redisUrl: redis.url } });
    const task = await a.create({ title: "version one" });
    expect(await b.get(task.id)).toEqual({ task, cache: "HIT" });

    await proxy.setDown(true);
    const updated = await a.update({ id: task.id, patch: { title: "version two" } });
    // B still sees the old entry in Redis: the cache lags Postgres, and the repair is on record.
    expect((await b.cache!.driver.getTask(task.id)).state).toBe("hit");
    expect(await queries.listCacheRepairs(b.database.db, { limit: 10 })).toEqual([
      expect.objectContaining({ taskId: task.id, indexDirty: false }),
    ]);

    expect(await b.repairNow()).toMatchObject({ repaired: 1 });
    expect(await b.get(task.id)).toEqual({ task: updated, cache: "HIT" });
    expect(await queries.listCacheRepairs(b.database.db, { limit: 10 })).toEqual([]);
    // A itself stays on Postgres while it cannot reach Redis, and answers the new version.
    expect(await a.get(task.id)).toEqual({ task: updated, cache: "BYPASS" });
    await proxy.setDown(false);
  });

  test("a repair of a deleted task tombstones it, and a failed create or delete drops the list index", async () => {
    const a = await env.openStore({ cache: { redisUrl: proxy.url("redis"), timeoutMs: 150, breakerFailures: 1, breakerCooldownMs: 60_000 } });
    const b = await env.openStore({ cache: { redisUrl: redis.url } });
    const task = await b.create({ title: "deleted while A could not reach Redis" });
    await b.list({ limit: 10 });
    await a.get(task.id).catch(() => undefined);
    await proxy.setDown(true);
    await a.remove({ id: task.id });
    expect((await b.cache!.driver.getTask(task.id)).state).toBe("hit"); // a ghost, until repaired
    await b.repairNow();
    expect((await b.cache!.driver.getTask(task.id)).state).toBe("tombstone");
    expect(await b.cache!.driver.readWholeIndex()).toBeNull();
    await expect(b.get(task.id)).rejects.toMatchObject({ code: "not_found" });
    expect((await b.list({ limit: 10 })).tasks.map((t) => t.id)).not.toContain(task.id);
    expect((await b.audit()).ok).toBe(true);
    await proxy.setDown(false);
  });

  test("the repair route runs a pass, and with CRON_SECRET set it needs the bearer token", async () => {
    const store = await env.openStore({ cache: { redisUrl: redis.url } });
    const secret = "s3cret-for-the-scheduler";
    const denied = await repairCache(async () => store, new Request("http://x/api/cache/repair"), secret);
    expect(denied.status).toBe(401);
    expect(await denied.json()).toMatchObject({ error: { code: "unauthorized" } });
    const allowed = await repairCache(
      async () => store,
      new Request("http://x/api/cache/repair", { headers: { Authorization: `Bearer ${secret}` } }),
      secret,
    );
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toEqual({ repaired: 0, remaining: 0 });
    const open = await repairCache(async () => store, new Request("http://x/api/cache/repair", { method: "POST" }), undefined);
    expect(open.status).toBe(200);
  });
});
