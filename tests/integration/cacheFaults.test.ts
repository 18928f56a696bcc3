import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Redis } from "ioredis";
import * as queries from "@/lib/tasks/queries";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { freePort, startPrivateRedis, type PrivateRedis } from "../support/redisServer";

const postgresRedis = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!postgresRedis) throw new Error("no postgres + redis backend");

describe("when Redis fails, requests still succeed from Postgres", () => {
  let env: TestEnv;
  let redis: PrivateRedis;

  beforeAll(async () => {
    env = await createTestEnv(postgresRedis);
    redis = await startPrivateRedis();
  });
  afterAll(async () => {
    await env.cleanup();
    await redis.stop();
  });

  const openTasks = async (options: Parameters<TestEnv["openStore"]>[0]) => (await env.openStore(options)).forUser(env.userId);

  test("with Redis unreachable every operation works, reads are BYPASS, and the breaker opens", async () => {
    const deadPort = await freePort();
    const store = await openTasks({
      cache: { redisUrl: `redis://127.0.0.1:${deadPort}`, timeoutMs: 200, breakerFailures: 3, breakerCooldownMs: 60_000 },
    });
    const created = await store.create({ title: "no cache today" });
    const updated = await store.update({ id: created.id, patch: { done: true } });
    expect(await store.get(created.id)).toEqual({ task: updated, cache: "BYPASS" });
    const page = await store.list({ limit: 10 });
    expect(page.cache).toBe("BYPASS");
    expect(page.tasks.map((t) => t.id)).toContain(created.id);
    await store.remove({ id: created.id });
    await expect(store.get(created.id)).rejects.toMatchObject({ code: "not_found" });
    expect(store.store.cache?.breakerState).toBe("open");
  });

  test("a write whose cache update timed out is repaired before this instance trusts the cache again", async () => {
    const store = await openTasks({ cache: { redisUrl: redis.url, timeoutMs: 150, breakerFailures: 100 } });
    const created = await store.create({ title: "version one" });
    expect((await store.get(created.id)).cache).toBe("HIT");

    // Writes stall (reads don't) for longer than the timeout: the write-through of v2 fails and the
    // cache keeps v1.
    const admin = new Redis(redis.url);
    try {
      await admin.client("PAUSE", 800, "WRITE");
      const updated = await store.update({ id: created.id, patch: { title: "version two" } });
      expect(updated.version).toBe(2);
      // Postgres has v2; the stale v1 entry is not served.
      const during = await store.get(created.id);
      expect(during.task.title).toBe("version two");
      expect(during.cache).toBe("BYPASS");
      await admin.client("UNPAUSE");
      // The next read repairs the entry from Postgres, then the cache is used again.
      const after = await store.get(created.id);
      expect(after.task).toEqual(updated);
      const again = await store.get(created.id);
      expect(again).toEqual({ task: updated, cache: "HIT" });
      expect(await queries.getTaskById(store.store.database.db, { userId: env.userId, id: created.id })).toEqual(updated);
    } finally {
      admin.disconnect();
    }
  });

  test("after Redis restarts the store uses it again without a restart of its own", async () => {
    const store = await openTasks({ cache: { redisUrl: redis.url, timeoutMs: 150, breakerFailures: 2, breakerCooldownMs: 200 } });
    const created = await store.create({ title: "survives a restart" });
    await redis.stop("SIGKILL");
    expect((await store.get(created.id)).cache).toBe("BYPASS");
    expect((await store.get(created.id)).cache).toBe("BYPASS");
    await redis.start();
    let outcome = "BYPASS";
    for (let i = 0; i < 50 && outcome !== "HIT"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      outcome = (await store.get(created.id)).cache;
    }
    expect(outcome).toBe("HIT");
  });
});
