import "server-only";
import { randomUUID } from "node:crypto";
import type { CacheDriverName } from "../names";
import type { Task } from "../tasks/schema";
import { allIndexesPattern, allTasksPattern, authKey, decodeEntry, everythingPattern, INDEX_SENTINEL, parseIndexKey, parseTaskKey, userCacheKeys } from "./keys";
import * as scripts from "./scripts";
import type { CacheDriver, CachedTask, IndexBuildStart, PutResult, UserTaskCache } from "./types";
import { jitteredTtl, missingTtlSeconds, type CacheTtls } from "./ttl";

/**
 * The handful of Redis commands the protocol needs. The redis driver (ioredis, TCP) and the upstash
 * driver (@upstash/redis, HTTPS) each provide one; everything else, the Lua scripts included, is
 * shared here, so both speak exactly the same protocol.
 */
export type RedisTransport = {
  get(key: string): Promise<string | null>;
  /** SET, with EX when `ttlSeconds` is given and NX when `onlyIfAbsent`; returns whether it was set. */
  set(key: string, value: string, options?: { ttlSeconds?: number; onlyIfAbsent?: boolean }): Promise<boolean>;
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

/** Redis expiries are whole seconds, at least one. */
function wholeSeconds(ttlSeconds: number): number {
  return Math.max(1, Math.ceil(ttlSeconds));
}

function toPutResult(code: unknown): PutResult {
  const n = Number(code);
  return n === 1 ? "written" : n === 2 ? "unchanged" : n === -1 ? "stale-epoch" : "refused";
}

/** The Lua-scripted drivers: every driver but the in-process one. */
export function createScriptedDriver(name: Exclude<CacheDriverName, "memory">, t: RedisTransport, options: ScriptedDriverOptions): CacheDriver {
  const deleteMatching = async (pattern: string) => {
    let cursor = "0";
    do {
      const [next, found] = await t.scan(cursor, pattern, 1000);
      cursor = next;
      if (found.length > 0) await t.del(found);
    } while (cursor !== "0");
  };

  const forUser = (userId: string): UserTaskCache => {
    const keys = userCacheKeys(options.prefix, userId);
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
    return {
      userId,
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
      async putMissing(id: number, epoch: string): Promise<PutResult> {
        // PUT_TASK with version 0 and no body: "0|", a tombstone below every real version.
        return toPutResult(await t.evalScript(scripts.PUT_TASK, [keys.task(id), keys.epoch], [0, "", missingTtlSeconds(options), epoch]));
      },
      getIndexPage: ({ beforeId, limit }) => readIndex(beforeId === undefined ? "+inf" : `(${beforeId}`, limit),
      async startIndexBuild(leaseMs: number): Promise<IndexBuildStart> {
        const token = randomUUID();
        const state = await t.evalScript(scripts.START_INDEX_BUILD, [keys.index, keys.build, keys.buildRemoved, keys.buildLease], [token, leaseMs]);
        return state === "started" ? { state, token } : { state: state === "exists" ? "exists" : "busy" };
      },
      async addToIndexBuild(token: string, ids: number[]): Promise<boolean> {
        return Number(await t.evalScript(scripts.ADD_TO_INDEX_BUILD, [keys.build, keys.buildLease], [token, ...ids])) === 1;
      },
      async abandonIndexBuild(token: string): Promise<boolean> {
        return Number(await t.evalScript(scripts.ABANDON_INDEX_BUILD, [keys.build, keys.buildRemoved, keys.buildLease], [token])) === 1;
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
        let cursor = "0";
        do {
          const [next, found] = await t.scan(cursor, `${keys.taskPrefix}*`, batchSize);
          cursor = next;
          if (found.length === 0) continue;
          const raw = await t.mget(found);
          yield found.map((key, i) => ({ id: Number(key.slice(keys.taskPrefix.length)), entry: decodeEntry(raw[i]) }));
        } while (cursor !== "0");
      },
      readWholeIndex: () => readIndex("+inf", -1),
      ttls: (ids) => (ids.length === 0 ? Promise.resolve([]) : t.ttls(ids.map((id) => keys.task(id)))),
      dropIndex: () => t.del([keys.index, keys.build, keys.buildRemoved, keys.buildLease]),
    };
  };

  return {
    name,
    forUser,
    async *scanAllEntries(batchSize: number) {
      let cursor = "0";
      do {
        const [next, found] = await t.scan(cursor, allTasksPattern(options.prefix), batchSize);
        cursor = next;
        const parsed = found.flatMap((key) => {
          const p = parseTaskKey(options.prefix, key);
          return p ? [{ key, ...p }] : [];
        });
        // Yield after every SCAN call, even with nothing found, so one step stays one bounded call
        // however sparse this app's keys are in the keyspace.
        if (parsed.length === 0) {
          yield [];
          continue;
        }
        // One MGET per user: a user's keys share a slot, different users' keys may not. Sent
        // together (one round trip with ioredis' pipelining), so a step stays short however many
        // users its keys belong to.
        const byUser = new Map<string, typeof parsed>();
        for (const p of parsed) byUser.set(p.userId, [...(byUser.get(p.userId) ?? []), p]);
        const groups = [...byUser];
        const raws = await Promise.all(groups.map(([, group]) => t.mget(group.map((g) => g.key))));
        const batch: Array<{ userId: string; id: number; entry: CachedTask }> = [];
        groups.forEach(([userId, group], j) => group.forEach((g, i) => batch.push({ userId, id: g.id, entry: decodeEntry(raws[j]?.[i]) })));
        yield batch;
      } while (cursor !== "0");
    },
    async *scanAllIndexes(batchSize: number) {
      let cursor = "0";
      do {
        const [next, found] = await t.scan(cursor, allIndexesPattern(options.prefix), batchSize);
        cursor = next;
        yield found.flatMap((key) => parseIndexKey(options.prefix, key) ?? []);
      } while (cursor !== "0");
    },
    async getValue(key) {
      const value = await t.get(authKey(options.prefix, key));
      return value === null || scripts.isMarker(value) ? null : value;
    },
    async replaceValue(key, value, ttlSeconds) {
      return Number(await t.evalScript(scripts.REPLACE_LIVE_VALUE, [authKey(options.prefix, key)], [value, wholeSeconds(ttlSeconds)])) === 1;
    },
    async beginFill(key, ttlSeconds) {
      const ticket = `${scripts.FILLING_PREFIX}${randomUUID()}`;
      return (await t.set(authKey(options.prefix, key), ticket, { ttlSeconds: wholeSeconds(ttlSeconds), onlyIfAbsent: true })) ? ticket : null;
    },
    async setValue(key, value, ttlSeconds) {
      const code = await t.evalScript(scripts.SET_UNLESS_REVOKED, [authKey(options.prefix, key)], [value, ttlSeconds === undefined ? "" : wholeSeconds(ttlSeconds), scripts.REVOKED_VALUE]);
      return Number(code) === 1;
    },
    async fillValue(key, value, ttlSeconds, ticket) {
      return Number(await t.evalScript(scripts.FILL_WITH_TICKET, [authKey(options.prefix, key)], [ticket, value, wholeSeconds(ttlSeconds)])) === 1;
    },
    async revokeValue(key, ttlSeconds) {
      await t.set(authKey(options.prefix, key), scripts.REVOKED_VALUE, { ttlSeconds: wholeSeconds(ttlSeconds) });
    },
    deleteValue: (key) => t.del([authKey(options.prefix, key)]),
    async getAndDeleteValue(key) {
      const value = await t.evalScript(scripts.GET_AND_DELETE_VALUE, [authKey(options.prefix, key)], [scripts.REVOKED_VALUE]);
      return typeof value === "string" ? value : null;
    },
    async incrementValue(key, ttlSeconds) {
      return Number(await t.evalScript(scripts.INCREMENT_VALUE, [authKey(options.prefix, key)], [wholeSeconds(ttlSeconds)]));
    },
    async decrementValue(key) {
      return Number(await t.evalScript(scripts.DECREMENT_VALUE, [authKey(options.prefix, key)], []));
    },
    flush: () => deleteMatching(everythingPattern(options.prefix)),
    ping: () => t.ping(),
    close: () => t.close(),
  };
}
