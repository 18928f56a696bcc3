import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Redis } from "ioredis";
import { wrapDriver } from "@/lib/cache";
import { userCacheKeys } from "@/lib/cache/keys";
import { createRedisClusterDriver, slotOf } from "@/lib/cache/redis";
import { CacheSlotMovingError, CacheUnavailableError, type CacheDriver } from "@/lib/cache/types";
import type { Task } from "@/lib/tasks/schema";
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

function clusterDriver(prefix = uniqueName("wtt"), wait?: { waitReplicas?: number; waitTimeoutMs?: number }) {
  const driver = createRedisClusterDriver({
    nodes: cluster.nodes.slice(0, 3).map((n) => ({ host: n.host, port: n.port })),
    prefix,
    ttlSeconds: 3600,
    tombstoneTtlSeconds: 3600,
    commandTimeoutMs: 2000,
    ...wait,
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

  test("slotOf() computes a key's slot as Redis does, hash tags included", async () => {
    const admin = cluster.admin(cluster.nodes[0]!.port);
    const keys = ["plain", "wt:{u:abc123}:task:7", "wt:{u:abc123}:views", "{}x", "a{}b{c}", "x{y}{z}", "{only", "€{ü}", ""];
    for (const key of keys) expect(slotOf(key), key).toBe(await admin.call("CLUSTER", "KEYSLOT", key));
  });

  const task = (id: number, version: number): Task => ({ id, title: `t${version}`, done: false, version, dueOn: null, createdAt: "x", updatedAt: "x" });
  /** The entry's version as the replica of `user`'s master holds it (0: none). */
  const onReplica = async (prefix: string, user: string, id: number) => {
    const key = userCacheKeys(prefix, user).task(id);
    const { replicas } = await cluster.masterOf(slotOf(key));
    const replica = new Redis({ host: "127.0.0.1", port: replicas[0]!, maxRetriesPerRequest: 1 });
    replica.on("error", () => {});
    try {
      await replica.call("READONLY");
      const raw = await replica.get(key);
      return raw === null ? 0 : Number(raw.split("|")[0]);
    } finally {
      replica.disconnect();
    }
  };

  test("a write-through resolves once the master's replica has it (WAIT), so a failover can't lose it", async () => {
    const prefix = uniqueName("wtt");
    const slot = clusterDriver(prefix).forUser("waiter");
    const epoch = await slot.epoch();
    for (let v = 1; v <= 20; v++) {
      expect(await slot.putTask(task(1, v), epoch)).toBe("written");
      // No waiting here: the replica had it before putTask resolved.
      expect(await onReplica(prefix, "waiter", 1)).toBe(v);
    }
  });

  test("with the replica's link cut, writes are unconfirmed (not counted as cache failures), fast after the first; confirmed again once it resyncs", async () => {
    const prefix = uniqueName("wtt");
    const driver = clusterDriver(prefix, { waitTimeoutMs: 300 });
    // A breaker that one counted failure would open.
    const cache = wrapDriver(driver, { timeoutMs: 2000, breakerFailures: 1, breakerCooldownMs: 60_000 });
    const slot = driver.forUser("cut");
    const epoch = await slot.epoch();
    await slot.putTask(task(1, 1), epoch);
    const { replicas } = await cluster.masterOf(slotOf(userCacheKeys(prefix, "cut").epoch));
    const cut = await cluster.cutReplication(replicas[0]!);
    try {
      const timed = async (v: number) => {
        const started = performance.now();
        const err = await cache.run("putTask", () => slot.putTask(task(1, v), epoch)).then(() => null, (e: unknown) => e);
        return { err, ms: performance.now() - started };
      };
      const first = await timed(2);
      expect(first.err).toBeInstanceOf(CacheUnavailableError);
      expect((first.err as CacheUnavailableError).reason).toBe("unconfirmed");
      expect(first.ms).toBeGreaterThanOrEqual(290); // it waited for the replica
      // The master took it all the same (reads see it); only its survival is not confirmed.
      expect(await slot.getTask(1)).toMatchObject({ state: "hit", task: { version: 2 } });
      // Now known short of its replica, the master's writes don't wait for it (until a probe).
      const next = await timed(3);
      expect((next.err as CacheUnavailableError).reason).toBe("unconfirmed");
      expect(next.ms).toBeLessThan(200);
      expect(cache.breakerState).toBe("closed");
    } finally {
      await cut.restore();
    }
    // A probe (every 500 ms) finds the replica back: writes are confirmed again.
    let v = 4;
    const deadline = Date.now() + 5_000;
    for (; Date.now() < deadline; v++) {
      if ((await slot.putTask(task(1, v), epoch).then(() => "ok", () => "unconfirmed")) === "ok") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(Date.now()).toBeLessThan(deadline);
    expect(await onReplica(prefix, "cut", 1)).toBe(v);
  }, 30_000);

  test("a write on a slot half migrated fails at once, leaving floors (no older version can be read or filled back) and no views", async () => {
    const prefix = uniqueName("wtt");
    const driver = clusterDriver(prefix);
    const slot = driver.forUser("mover");
    const keys = userCacheKeys(prefix, "mover");
    const epoch = await slot.epoch();
    await slot.writeTasks([{ task: task(1, 1) }, { task: task(2, 1) }], epoch);
    const build = await slot.startIndexBuild(5_000);
    if (build.state !== "started") throw new Error("no build");
    await slot.addToIndexBuild(build.token, [task(1, 1), task(2, 1)]);
    await slot.publishIndexBuild(build.token);
    expect((await slot.readIndex())?.views["all:new"]).toEqual([2, 1]);
    // Half a move: the slot is migrating, and task 1's entry is on the target already.
    const number = slotOf(keys.epoch);
    const from = (await cluster.masterOf(number)).master;
    const to = (await cluster.masters()).find((p) => p !== from)!;
    const move = await cluster.moveSlot(number, to);
    try {
      await move.migrate(0, [keys.task(1)]);
      // The write script needs all of the user's keys on one side: refused (TRYAGAIN), at once.
      const started = performance.now();
      const err = await slot.writeTasks([{ task: task(1, 2) }, { id: 2, version: 2, deleted: true }], epoch).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CacheSlotMovingError);
      expect((err as CacheUnavailableError).reason).toBe("unconfirmed");
      expect(performance.now() - started).toBeLessThan(1_000);
      // One-key steps ran on whichever side holds each key: both entries read as misses now.
      expect(await slot.getTask(1)).toEqual({ state: "miss" });
      expect(await slot.getTask(2)).toEqual({ state: "miss" });
    } finally {
      await move.finish();
    }
    expect((await cluster.masterOf(number)).master).toBe(to);
    // The client learns where the slot went: a read meets MOVED, and its answer, from a new master, isn't trusted.
    expect(await slot.getTask(1).then(() => "trusted", (e: unknown) => (e as CacheUnavailableError).reason)).toBe("unconfirmed");
    // Floors at the writes' versions: the old states can't be filled back; the views are gone (a list rebuilds them).
    expect(await slot.putTask(task(1, 1), epoch)).toBe("refused");
    expect(await slot.putTask(task(2, 1), epoch)).toBe("refused");
    expect(await slot.readIndex()).toBeNull();
    expect(await slot.putTask(task(1, 2), epoch)).toBe("written");
    expect(await slot.getTask(1)).toMatchObject({ state: "hit", task: { version: 2 } });
  });
});
