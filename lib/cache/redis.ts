import { randomUUID } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import type { Task } from "../tasks/schema";
import { cacheKeys, decodeEntry, INDEX_SENTINEL } from "./keys";
import * as scripts from "./scripts";
import type { CachedTask, IndexBuildStart, PutResult, TaskCacheDriver } from "./types";
import { jitteredTtl, type CacheTtls } from "./ttl";

export type RedisDriverOptions = CacheTtls & {
  url: string;
  prefix: string;
  /** Per-command timeout; a slow or paused Redis fails the command instead of the request. */
  commandTimeoutMs: number;
};

type ScriptCommands = {
  wtPutTask(key: string, epochKey: string, version: number, json: string, ttl: number, epoch: string): Promise<number>;
  wtEnsureEpoch(key: string, candidate: string): Promise<string>;
  wtWriteMembership(...args: (string | number)[]): Promise<number>;
  wtReadIndexPage(key: string, max: string, limit: number): Promise<string[] | null>;
  wtStartIndexBuild(...args: (string | number)[]): Promise<string>;
  wtAddToIndexBuild(...args: (string | number)[]): Promise<number>;
  wtPublishIndexBuild(...args: (string | number)[]): Promise<number>;
};

function toPutResult(code: number): PutResult {
  return code === 1 ? "written" : code === -1 ? "stale-epoch" : "refused";
}

/** The redis driver: ioredis over TCP; every write is one of the Lua scripts in ./scripts. */
export function createRedisDriver(options: RedisDriverOptions): TaskCacheDriver & { client: Redis } {
  const keys = cacheKeys(options.prefix);
  const redisOptions: RedisOptions = {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(1000, options.commandTimeoutMs * 4),
    // Commands issued while (re)connecting wait in the queue, bounded by commandTimeout; once the
    // breaker opens, the store stops sending them at all.
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    // Keep reconnecting for ever, backing off to 1 s, so the app uses Redis again when it returns.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    lazyConnect: false,
    // Commands issued in the same tick (a list page's fills) share one round trip.
    enableAutoPipelining: true,
  };
  const client = new Redis(options.url, redisOptions) as Redis & ScriptCommands;
  // ioredis emits 'error' on every failed reconnect; the breaker logs state changes instead.
  client.on("error", () => {});
  // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (e.g. after a Redis restart).
  client.defineCommand("wtPutTask", { numberOfKeys: 2, lua: scripts.PUT_TASK });
  client.defineCommand("wtEnsureEpoch", { numberOfKeys: 1, lua: scripts.ENSURE_EPOCH });
  client.defineCommand("wtWriteMembership", { numberOfKeys: 6, lua: scripts.WRITE_THROUGH_MEMBERSHIP });
  client.defineCommand("wtReadIndexPage", { numberOfKeys: 1, lua: scripts.READ_INDEX_PAGE });
  client.defineCommand("wtStartIndexBuild", { numberOfKeys: 4, lua: scripts.START_INDEX_BUILD });
  client.defineCommand("wtAddToIndexBuild", { numberOfKeys: 2, lua: scripts.ADD_TO_INDEX_BUILD });
  client.defineCommand("wtPublishIndexBuild", { numberOfKeys: 4, lua: scripts.PUBLISH_INDEX_BUILD });

  const membership = (id: number, version: number, json: string, op: "add" | "remove", epoch: string) =>
    client.wtWriteMembership(
      keys.task(id),
      keys.index,
      keys.build,
      keys.buildRemoved,
      keys.buildLease,
      keys.epoch,
      version,
      json,
      json === "" ? options.tombstoneTtlSeconds : jitteredTtl(options.ttlSeconds),
      id,
      op,
      options.ttlSeconds,
      epoch,
    ).then(toPutResult);

  return {
    name: "redis",
    client,
    async getTask(id: number): Promise<CachedTask> {
      return decodeEntry(await client.get(keys.task(id)));
    },
    async getTasks(ids: number[]): Promise<CachedTask[]> {
      if (ids.length === 0) return [];
      const raw = await client.mget(ids.map((id) => keys.task(id)));
      return raw.map(decodeEntry);
    },
    async epoch(): Promise<string> {
      return client.wtEnsureEpoch(keys.epoch, randomUUID());
    },
    async putTask(task: Task, epoch: string): Promise<PutResult> {
      return toPutResult(
        await client.wtPutTask(keys.task(task.id), keys.epoch, task.version, JSON.stringify(task), jitteredTtl(options.ttlSeconds), epoch),
      );
    },
    putCreated(task: Task, epoch: string): Promise<PutResult> {
      return membership(task.id, task.version, JSON.stringify(task), "add", epoch);
    },
    putTombstone(id: number, version: number, epoch: string): Promise<PutResult> {
      return membership(id, version, "", "remove", epoch);
    },
    async getIndexPage({ beforeId, limit }): Promise<number[] | null> {
      const max = beforeId === undefined ? "+inf" : `(${beforeId}`;
      const ids = await client.wtReadIndexPage(keys.index, max, limit);
      return ids === null ? null : ids.map(Number);
    },
    async startIndexBuild(leaseMs: number): Promise<IndexBuildStart> {
      const token = randomUUID();
      const state = await client.wtStartIndexBuild(keys.index, keys.build, keys.buildRemoved, keys.buildLease, token, leaseMs);
      return state === "started" ? { state, token } : { state: state === "exists" ? "exists" : "busy" };
    },
    async addToIndexBuild(token: string, ids: number[]): Promise<boolean> {
      return (await client.wtAddToIndexBuild(keys.build, keys.buildLease, token, ...ids)) === 1;
    },
    async publishIndexBuild(token: string): Promise<boolean> {
      return (
        (await client.wtPublishIndexBuild(keys.index, keys.build, keys.buildRemoved, keys.buildLease, token, INDEX_SENTINEL, options.ttlSeconds)) === 1
      );
    },
    async *scanEntries(batchSize: number) {
      const taskPrefix = keys.task(0).slice(0, -1);
      let cursor = "0";
      do {
        const [next, found] = await client.scan(cursor, "MATCH", `${taskPrefix}*`, "COUNT", batchSize);
        cursor = next;
        if (found.length === 0) continue;
        const raw = await client.mget(found);
        yield found.map((key, i) => ({ id: Number(key.slice(taskPrefix.length)), entry: decodeEntry(raw[i]) }));
      } while (cursor !== "0");
    },
    async readWholeIndex(): Promise<number[] | null> {
      const ids = await client.wtReadIndexPage(keys.index, "+inf", -1);
      return ids === null ? null : ids.map(Number);
    },
    async flush(): Promise<void> {
      let cursor = "0";
      do {
        const [next, found] = await client.scan(cursor, "MATCH", keys.pattern, "COUNT", 1000);
        cursor = next;
        if (found.length > 0) await client.unlink(...found);
      } while (cursor !== "0");
    },
    async dropIndex(): Promise<void> {
      await client.del(keys.index, keys.build, keys.buildRemoved, keys.buildLease);
    },
    async ping(): Promise<void> {
      await client.ping();
    },
    async close(): Promise<void> {
      client.disconnect();
    },
  };
}
