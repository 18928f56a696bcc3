import { randomUUID } from "node:crypto";
import type { Task } from "../tasks/schema";
import { cacheKeys, decodeEntry, INDEX_SENTINEL } from "./keys";
import * as scripts from "./scripts";
import type { CachedTask, IndexBuildStart, PutResult, TaskCacheDriver } from "./types";
import { jitteredTtl, type CacheTtls } from "./ttl";

/**
 * The handful of Redis commands the protocol needs. The redis driver (ioredis, TCP) and the upstash
 * driver (@upstash/redis, HTTPS) each provide one; everything else, the Lua scripts included, is
 * shared here, so both speak exactly the same protocol.
 */
export type RedisTransport = {
  get(key: string): Promise<string | null>;
  mget(keys: string[]): Promise<Array<string | null>>;
  /** EVALSHA, falling back to EVAL when Redis answers NOSCRIPT. */
  evalScript(script: string, keys: string[], args: Array<string | number>): Promise<unknown>;
  scan(cursor: string, match: string, count: number): Promise<[string, string[]]>;
  del(keys: string[]): Promise<void>;
  ttls(keys: string[]): Promise<number[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

export type ScriptedDriverOptions = CacheTtls & { prefix: string };

function toPutResult(code: unknown): PutResult {
  const n = Number(code);
  return n === 1 ? "written" : n === 2 ? "unchanged" : n === -1 ? "stale-epoch" : "refused";
}

export function createScriptedDriver(name: "redis" | "upstash", t: RedisTransport, options: ScriptedDriverOptions): TaskCacheDriver {
  const keys = cacheKeys(options.prefix);
  const membership = (id: number, version: number, json: string, op: "add" | "remove", epoch: string) =>
    t
      .evalScript(
        scripts.WRITE_THROUGH_MEMBERSHIP,
        [keys.task(id), keys.index, keys.build, keys.buildRemoved, keys.buildLease, keys.epoch],
        [version, json, json === "" ? options.tombstoneTtlSeconds : jitteredTtl(options.ttlSeconds), id, op, options.ttlSeconds, epoch],
      )
      .then(toPutResult);
  const readIndex = async (max: string, limit: number) => {
    const ids = (await t.evalScript(scripts.READ_INDEX_PAGE, [keys.index], [max, limit])) as Array<string | number> | null;
    return ids === null || ids === undefined ? null : ids.map(Number);
  };
  const deleteMatching = async (pattern: string) => {
    let cursor = "0";
    do {
      const [next, found] = await t.scan(cursor, pattern, 1000);
      cursor = next;
      if (found.length > 0) await t.del(found);
    } while (cursor !== "0");
  };

  return {
    name,
    async getTask(id: number): Promise<CachedTask> {
      return decodeEntry(await t.get(keys.task(id)));
    },
    async getTasks(ids: number[]): Promise<CachedTask[]> {
      if (ids.length === 0) return [];
      return (await t.mget(ids.map((id) => keys.task(id)))).map(decodeEntry);
    },
    async epoch(): Promise<string> {
      return String(await t.evalScript(scripts.ENSURE_EPOCH, [keys.epoch], [randomUUID()]));
    },
    async putTask(task: Task, epoch: string): Promise<PutResult> {
      const code = await t.evalScript(
        scripts.PUT_TASK,
        [keys.task(task.id), keys.epoch],
        [task.version, JSON.stringify(task), jitteredTtl(options.ttlSeconds), epoch],
      );
      return toPutResult(code);
    },
    putCreated: (task, epoch) => membership(task.id, task.version, JSON.stringify(task), "add", epoch),
    putTombstone: (id, version, epoch) => membership(id, version, "", "remove", epoch),
    getIndexPage: ({ beforeId, limit }) => readIndex(beforeId === undefined ? "+inf" : `(${beforeId}`, limit),
    async startIndexBuild(leaseMs: number): Promise<IndexBuildStart> {
      const token = randomUUID();
      const state = await t.evalScript(scripts.START_INDEX_BUILD, [keys.index, keys.build, keys.buildRemoved, keys.buildLease], [token, leaseMs]);
      return state === "started" ? { state, token } : { state: state === "exists" ? "exists" : "busy" };
    },
    async addToIndexBuild(token: string, ids: number[]): Promise<boolean> {
      return Number(await t.evalScript(scripts.ADD_TO_INDEX_BUILD, [keys.build, keys.buildLease], [token, ...ids])) === 1;
    },
    async publishIndexBuild(token: string): Promise<boolean> {
      const code = await t.evalScript(
        scripts.PUBLISH_INDEX_BUILD,
        [keys.index, keys.build, keys.buildRemoved, keys.buildLease],
        [token, INDEX_SENTINEL, options.ttlSeconds],
      );
      return Number(code) === 1;
    },
    async *scanEntries(batchSize: number) {
      const taskPrefix = keys.task(0).slice(0, -1);
      let cursor = "0";
      do {
        const [next, found] = await t.scan(cursor, `${taskPrefix}*`, batchSize);
        cursor = next;
        if (found.length === 0) continue;
        const raw = await t.mget(found);
        yield found.map((key, i) => ({ id: Number(key.slice(taskPrefix.length)), entry: decodeEntry(raw[i]) }));
      } while (cursor !== "0");
    },
    readWholeIndex: () => readIndex("+inf", -1),
    ttls: (ids) => (ids.length === 0 ? Promise.resolve([]) : t.ttls(ids.map((id) => keys.task(id)))),
    flush: () => deleteMatching(keys.pattern),
    dropIndex: () => t.del([keys.index, keys.build, keys.buildRemoved, keys.buildLease]),
    ping: () => t.ping(),
    close: () => t.close(),
  };
}
