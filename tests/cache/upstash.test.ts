import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Redis as UpstashRedis } from "@upstash/redis";
import { Redis } from "ioredis";
import { createUpstashDriver } from "@/lib/cache/upstash";
import { deleteKeysWithPrefix, TEST_REDIS_URL, uniqueName } from "../support/services";
import { startPrivateRedis } from "../support/redisServer";
import { startUpstashBridge, type UpstashBridge } from "../support/upstashBridge";
import { registerCacheDriverContract } from "./contract";

let bridge: UpstashBridge;
beforeAll(async () => {
  bridge = await startUpstashBridge(TEST_REDIS_URL);
});
afterAll(async () => {
  await bridge.close();
});

registerCacheDriverContract("upstash", async () => {
  const prefix = uniqueName("wtt");
  const driver = createUpstashDriver({ url: bridge.url, token: bridge.token, prefix, ttlSeconds: 3600, tombstoneTtlSeconds: 3600, commandTimeoutMs: 2000 });
  return {
    ...driver,
    async close() {
      await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
      await driver.close();
    },
  };
});

describe("upstash driver over the REST protocol", () => {
  test("the bridge refuses a wrong token with 401, and the driver surfaces it as an error", async () => {
    const res = await fetch(bridge.url, { method: "POST", headers: { authorization: "Bearer nope" }, body: '["PING"]' });
    expect(res.status).toBe(401);
    const driver = createUpstashDriver({ url: bridge.url, token: "wrong", prefix: "x", ttlSeconds: 60, tombstoneTtlSeconds: 60, commandTimeoutMs: 2000 });
    await expect(driver.ping()).rejects.toThrow(/Unauthorized/);
  });

  test("pipeline and multi-exec endpoints answer as Upstash does", async () => {
    const client = new UpstashRedis({ url: bridge.url, token: bridge.token, responseEncoding: false, automaticDeserialization: false });
    const key = uniqueName("wtt");
    const piped = await client.pipeline().set(key, "1").incr(key).get(key).exec();
    expect(piped.map(String)).toEqual(["OK", "2", "2"]);
    const multi = await client.multi().incr(key).get(key).exec();
    expect(multi.map(String)).toEqual(["3", "3"]);
    await client.del(key);
  });

  test("scripts still run after Redis forgets them (NOSCRIPT → EVAL), through HTTP", async () => {
    // SCRIPT FLUSH on a private redis-server, never on the shared one.
    const own = await startPrivateRedis();
    const ownBridge = await startUpstashBridge(own.url);
    const prefix = uniqueName("wtt");
    const driver = createUpstashDriver({ url: ownBridge.url, token: ownBridge.token, prefix, ttlSeconds: 60, tombstoneTtlSeconds: 60, commandTimeoutMs: 2000 });
    const admin = new Redis(own.url);
    try {
      const slot = driver.forUser("u1");
      const epoch = await slot.epoch();
      await admin.script("FLUSH");
      const t = { id: 1, title: "t", done: false, version: 2, dueOn: null, createdAt: "x", updatedAt: "x" };
      expect(await slot.putTask(t, epoch)).toBe("written");
      expect(await slot.getTask(1)).toEqual({ state: "hit", task: t });
    } finally {
      admin.disconnect();
      await ownBridge.close();
      await own.stop();
    }
  });

  test("a dead endpoint fails within the command timeout instead of retrying", async () => {
    const driver = createUpstashDriver({ url: "http://127.0.0.1:9", token: "t", prefix: "x", ttlSeconds: 60, tombstoneTtlSeconds: 60, commandTimeoutMs: 300 });
    await expect(driver.forUser("u1").getTask(1)).rejects.toThrow();
  });
});
