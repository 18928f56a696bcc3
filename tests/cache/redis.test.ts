import { describe, expect, test } from "vitest";
import { Redis } from "ioredis";
import { authKey, userCacheKeys } from "@/lib/cache/keys";
import { wrapDriver } from "@/lib/cache";
import { createRedisDriver } from "@/lib/cache/redis";
import { deleteKeysWithPrefix, TEST_REDIS_URL, uniqueName } from "../support/services";
import { startPrivateRedis } from "../support/redisServer";
import { registerCacheDriverContract } from "./contract";

const prefixes: string[] = [];

registerCacheDriverContract("redis", async () => {
  const prefix = uniqueName("wtt");
  prefixes.push(prefix);
  const driver = createRedisDriver({ url: TEST_REDIS_URL, prefix, ttlSeconds: 3600, tombstoneTtlSeconds: 3600, commandTimeoutMs: 2000 });
  await driver.client.ping();
  return {
    ...driver,
    async close() {
      await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
      await driver.close();
    },
  };
});

describe("redis driver specifics", () => {
  test("every task key is under the prefix and its owner's hash tag, so each user's scripts stay in one cluster slot", async () => {
    const prefix = uniqueName("wtt");
    const driver = createRedisDriver({ url: TEST_REDIS_URL, prefix, ttlSeconds: 60, tombstoneTtlSeconds: 60, commandTimeoutMs: 2000 });
    try {
      for (const user of ["alice", "bob"]) {
        const slot = driver.forUser(user);
        await slot.putTask({ id: 1, title: "t", done: false, version: 1, dueOn: null, createdAt: "x", updatedAt: "x" }, await slot.epoch());
        const start = await slot.startIndexBuild(5000);
        if (start.state === "started") await slot.publishIndexBuild(start.token);
      }
      await driver.setValue("session-token", "{}", 60);
      const keys = await driver.client.keys(`${prefix}:*`);
      expect(keys.length).toBeGreaterThanOrEqual(5);
      for (const key of keys) expect(key).toMatch(new RegExp(`^${prefix}:(\\{u:(alice|bob)\\}:|auth:)`));
      expect(keys).toContain(userCacheKeys(prefix, "alice").task(1));
      expect(keys).toContain(userCacheKeys(prefix, "bob").task(1));
      expect(keys).toContain(authKey(prefix, "session-token"));
    } finally {
      await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
      await driver.close();
    }
  });

  test("entries get a TTL within ±10 % of the configured one", async () => {
    const prefix = uniqueName("wtt");
    const driver = createRedisDriver({ url: TEST_REDIS_URL, prefix, ttlSeconds: 1000, tombstoneTtlSeconds: 5000, commandTimeoutMs: 2000 });
    try {
      const slot = driver.forUser("u1");
      await slot.putTask({ id: 1, title: "t", done: false, version: 1, dueOn: null, createdAt: "x", updatedAt: "x" }, await slot.epoch());
      await slot.putTombstone(2, 1, await slot.epoch());
      const ttl = await driver.client.ttl(userCacheKeys(prefix, "u1").task(1));
      expect(ttl).toBeGreaterThanOrEqual(890);
      expect(ttl).toBeLessThanOrEqual(1100);
      expect(await driver.client.ttl(userCacheKeys(prefix, "u1").task(2))).toBeGreaterThan(4900);
    } finally {
      await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
      await driver.close();
    }
  });

  test("scripts still run after Redis forgets them (SCRIPT FLUSH → NOSCRIPT → EVAL fallback)", async () => {
    // SCRIPT FLUSH on a private redis-server, never on the shared one.
    const own = await startPrivateRedis();
    const prefix = uniqueName("wtt");
    const driver = createRedisDriver({ url: own.url, prefix, ttlSeconds: 60, tombstoneTtlSeconds: 60, commandTimeoutMs: 2000 });
    const admin = new Redis(own.url);
    try {
      const slot = driver.forUser("u1");
      await slot.putTask({ id: 1, title: "t", done: false, version: 1, dueOn: null, createdAt: "x", updatedAt: "x" }, await slot.epoch());
      await admin.script("FLUSH");
      expect(await slot.putTask({ id: 1, title: "t2", done: false, version: 2, dueOn: null, createdAt: "x", updatedAt: "x" }, await slot.epoch())).toBe("written");
      expect(await slot.getTask(1)).toMatchObject({ state: "hit", task: { title: "t2" } });
    } finally {
      admin.disconnect();
      await driver.close();
      await own.stop();
    }
  });

  test("a stalled event loop doesn't time out a healthy Redis, while a Redis that is slow itself still opens the breaker", async () => {
    const own = await startPrivateRedis();
    const prefix = uniqueName("wtt");
    const driver = createRedisDriver({ url: own.url, prefix, ttlSeconds: 60, tombstoneTtlSeconds: 60, commandTimeoutMs: 50 });
    const cache = wrapDriver(driver, { timeoutMs: 50, breakerFailures: 1, breakerCooldownMs: 60_000 });
    const admin = new Redis(own.url);
    try {
      await driver.setValue("k", "v", 60);
      for (let i = 0; i < 3; i++) {
        const read = cache.run("authGet", () => driver.getValue("k"));
        // 300 ms of synchronous work right after the call (a long render, or no CPU to be had):
        // the reply waits in the socket while the 50 ms timer comes due.
        blockEventLoop(300);
        await expect(read).resolves.toBe("v");
      }
      expect(cache.breaker.stats).toMatchObject({ timeouts: 0, failures: 0 });
      expect(cache.breakerState).toBe("closed");

      // The control: the loop is free and Redis is what's slow (a script holds it for 400 ms).
      const hog = admin.eval("local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > 400000 return 1", 0);
      await new Promise((r) => setTimeout(r, 50));
      await expect(cache.run("authGet", () => driver.getValue("k"))).rejects.toMatchObject({ reason: "timeout" });
      expect(cache.breakerState).toBe("open");
      await hog;
    } finally {
      admin.disconnect();
      await driver.close();
      await own.stop();
    }
  });
});

function blockEventLoop(ms: number) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Nothing else runs meanwhile.
  }
}
