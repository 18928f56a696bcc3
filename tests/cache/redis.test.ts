import { describe, expect, test } from "vitest";
import { Redis } from "ioredis";
import { cacheKeys } from "@/lib/cache/keys";
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
  test("every key is under the prefix and the {tasks} hash tag, so scripts stay in one cluster slot", async () => {
    const prefix = uniqueName("wtt");
    const driver = createRedisDriver({ url: TEST_REDIS_URL, prefix, ttlSeconds: 60, tombstoneTtlSeconds: 60, commandTimeoutMs: 2000 });
    try {
      await driver.putCreated({ id: 1, title: "t", done: false, version: 1, createdAt: "x", updatedAt: "x" }, await driver.epoch());
      const start = await driver.startIndexBuild(5000);
      if (start.state === "started") await driver.publishIndexBuild(start.token);
      const keys = await driver.client.keys(`${prefix}:*`);
      expect(keys.length).toBeGreaterThanOrEqual(2);
      for (const key of keys) expect(key.startsWith(`${prefix}:{tasks}:`)).toBe(true);
      expect(keys).toContain(cacheKeys(prefix).task(1));
    } finally {
      await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
      await driver.close();
    }
  });

  test("entries get a TTL within ±10 % of the configured one", async () => {
    const prefix = uniqueName("wtt");
    const driver = createRedisDriver({ url: TEST_REDIS_URL, prefix, ttlSeconds: 1000, tombstoneTtlSeconds: 5000, commandTimeoutMs: 2000 });
    try {
      await driver.putTask({ id: 1, title: "t", done: false, version: 1, createdAt: "x", updatedAt: "x" }, await driver.epoch());
      await driver.putTombstone(2, 1, await driver.epoch());
      const ttl = await driver.client.ttl(cacheKeys(prefix).task(1));
      expect(ttl).toBeGreaterThanOrEqual(890);
      expect(ttl).toBeLessThanOrEqual(1100);
      expect(await driver.client.ttl(cacheKeys(prefix).task(2))).toBeGreaterThan(4900);
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
      await driver.putTask({ id: 1, title: "t", done: false, version: 1, createdAt: "x", updatedAt: "x" }, await driver.epoch());
      await admin.script("FLUSH");
      expect(await driver.putTask({ id: 1, title: "t2", done: false, version: 2, createdAt: "x", updatedAt: "x" }, await driver.epoch())).toBe("written");
      expect(await driver.getTask(1)).toMatchObject({ state: "hit", task: { title: "t2" } });
    } finally {
      admin.disconnect();
      await driver.close();
      await own.stop();
    }
  });
});
