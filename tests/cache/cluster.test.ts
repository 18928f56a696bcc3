import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { userCacheKeys } from "@/lib/cache/keys";
import { createRedisClusterDriver } from "@/lib/cache/redis";
import type { CacheDriver } from "@/lib/cache/types";
import { startRedisCluster, type PrivateCluster } from "../support/redisCluster";
import { uniqueName } from "../support/services";
import { registerCacheDriverContract } from "./contract";

// The redis driver on a real Redis Cluster (3 masters + 3 replicas, private ports): the same
// contract as on one Redis, then what only a cluster can show. The cluster is started once for
// this file; every driver made here has its own key prefix.

let cluster: PrivateCluster;
const opened: CacheDriver[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 120_000);
afterAll(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close()));
  await cluster?.stop();
});

function clusterDriver(prefix = uniqueName("wtt")) {
  const driver = createRedisClusterDriver({
    nodes: cluster.nodes.slice(0, 3).map((n) => ({ host: n.host, port: n.port })),
    prefix,
    ttlSeconds: 3600,
    tombstoneTtlSeconds: 3600,
    commandTimeoutMs: 2000,
  });
  opened.push(driver);
  return driver;
}

registerCacheDriverContract("redis cluster", async () => {
  const driver = clusterDriver();
  await driver.ping();
  return {
    ...driver,
    async close() {
      await driver.flush();
      await driver.close();
    },
  };
});

describe("redis driver on a cluster", () => {
  test("one user's keys share one slot; 1,000 users' keys spread over the 3 masters (25 % to 42 % each)", async () => {
    const prefix = uniqueName("wtt");
    const driver = clusterDriver(prefix);
    const client = driver.client;
    const users = Array.from({ length: 1000 }, (_, i) => `spread${i}`);
    for (let i = 0; i < users.length; i += 100) {
      await Promise.all(
        users.slice(i, i + 100).map(async (user) => {
          const slot = driver.forUser(user);
          const epoch = await slot.epoch();
          await slot.writeTasks([1, 2, 3].map((id) => ({ task: { id, title: "t", done: id === 2, version: 1, dueOn: null, createdAt: "x", updatedAt: "x" } })), epoch);
          const start = await slot.startIndexBuild(5000);
          if (start.state === "started") await slot.publishIndexBuild(start.token);
        }),
      );
    }
    // Every key of a user is in that user's slot (the scripts would fail with CROSSSLOT otherwise).
    const keys = userCacheKeys(prefix, "spread7");
    const slots = new Set(await Promise.all([keys.task(1), keys.views, keys.epoch, ...keys.viewSets].map((k) => client.call("CLUSTER", "KEYSLOT", k))));
    expect(slots.size).toBe(1);
    // Per master, this prefix's keys.
    const perMaster = await Promise.all(
      client.nodes("master").map(async (node) => {
        let cursor = "0";
        let n = 0;
        do {
          const [next, found] = await node.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
          cursor = next;
          n += found.length;
        } while (cursor !== "0");
        return n;
      }),
    );
    const total = perMaster.reduce((a, b) => a + b, 0);
    const shares = perMaster.map((n) => n / total);
    console.log(`cluster spread of ${total} keys of 1,000 users over 3 masters: ${shares.map((s) => `${(100 * s).toFixed(1)} %`).join(", ")}`);
    expect(perMaster).toHaveLength(3);
    for (const share of shares) {
      expect(share).toBeGreaterThanOrEqual(0.25);
      expect(share).toBeLessThanOrEqual(0.42);
    }
    // The whole-store walks visit every master: every user's views are found, and a flush empties all three.
    const found = new Set<string>();
    for await (const batch of driver.scanAllIndexes(500)) for (const u of batch) found.add(u);
    expect(found.size).toBe(1000);
    let entries = 0;
    for await (const batch of driver.scanAllEntries(500)) entries += batch.length;
    expect(entries).toBe(3000);
    await driver.flush();
    for (const node of client.nodes("master")) expect((await node.scan("0", "MATCH", `${prefix}:*`, "COUNT", 10_000))[1]).toEqual([]);
  }, 120_000);

  test("reads and writes go to masters only", () => {
    const driver = clusterDriver();
    expect((driver.client).options.scaleReads).toBe("master");
  });
});
