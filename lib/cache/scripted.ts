import "server-only";
import { randomUUID } from "node:crypto";
import type { CacheDriverName } from "../names";
import { dueScore } from "../tasks/schema";
import {
  allIndexesPattern,
  allTasksPattern,
  authKey,
  decodeEntry,
  everythingPattern,
  parseIndexKey,
  parseTaskKey,
  userCacheKeys,
  VIEW_ORDER,
  type UserCacheKeys,
  type ViewName,
} from "./keys";
import * as scripts from "./scripts";
import { CacheSlotMovingError, type CacheDriver, type CachedTask, type CacheWrite, type IndexBuildStart, type IndexRow, type IndexSnapshot, type PutResult, type UserTaskCache, type ViewPage } from "./types";
import { jitteredTtl, missingTtlSeconds, type CacheTtls } from "./ttl";

/**
 * How a write is sent. `confirm`: it must survive a failover (a write-through, a tombstone, a
 * repair, a revocation, a view drop, a flush). A transport whose Redis replicates asynchronously
 * (the redis driver on a cluster) then resolves only once the master's replicas have it, and
 * otherwise throws CacheUnavailableError("unconfirmed"), having perhaps written it (ADR 014);
 * the others ignore it. Fills and other writes whose loss only costs a miss don't ask.
 */
export type WriteOptions = { confirm?: boolean };

/**
 * The handful of Redis commands the protocol needs. The redis driver (ioredis, TCP) and the upstash
 * driver (@upstash/redis, HTTPS) each provide one; everything else, the Lua scripts included, is
 * shared here, so both speak exactly the same protocol.
 */
export type RedisTransport = {
  get(key: string): Promise<string | null>;
  /** SET, with EX when `ttlSeconds` is given and NX when `onlyIfAbsent`; returns whether it was set. */
  set(key: string, value: string, options?: { ttlSeconds?: number; onlyIfAbsent?: boolean } & WriteOptions): Promise<boolean>;
  mget(keys: string[]): Promise<Array<string | null>>;
  /** EVALSHA, falling back to EVAL when Redis answers NOSCRIPT. */
  evalScript(script: string, keys: string[], args: Array<string | number>, options?: WriteOptions): Promise<unknown>;
  scan(cursor: string, match: string, count: number): Promise<[string, string[]]>;
  del(keys: string[], options?: WriteOptions): Promise<void>;
  ttls(keys: string[]): Promise<number[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

export type ScriptedDriverOptions = CacheTtls & { prefix: string };

/** The writes that must survive a failover (see WriteOptions). */
const CONFIRM: WriteOptions = { confirm: true };

/** Redis expiries are whole seconds, at least one. */
function wholeSeconds(ttlSeconds: number): number {
  return Math.max(1, Math.ceil(ttlSeconds));
}

function viewKey(keys: UserCacheKeys, view: ViewName): string {
  return keys.viewSets[VIEW_ORDER.indexOf(view)] as string;
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
      if (found.length > 0) await t.del(found, CONFIRM);
    } while (cursor !== "0");
  };

  const forUser = (userId: string): UserTaskCache => {
    const keys = userCacheKeys(options.prefix, userId);
    const writeKeys = [keys.epoch, keys.views, ...keys.viewSets, keys.build, ...keys.buildSets, keys.buildLease];
    const writeTasks = async (writes: CacheWrite[], epoch: string): Promise<PutResult[]> => {
      if (writes.length === 0) return [];
      const args: Array<string | number> = [epoch, jitteredTtl(options.ttlSeconds), options.tombstoneTtlSeconds, options.ttlSeconds];
      const taskKeys: string[] = [];
      for (const w of writes) {
        if ("task" in w) args.push(w.task.id, w.task.version, JSON.stringify(w.task), w.task.done ? "1" : "0", dueScore(w.task));
        else args.push(w.id, w.version, "", "0", "0");
        taskKeys.push(keys.task("task" in w ? w.task.id : w.id));
      }
      // Confirmed, for every caller: write-throughs, tombstones and repairs need it. A miss-fill
      // (the same call) doesn't (a lost fill is a later miss); it shares the WAIT of the writes
      // sent with it, and an unconfirmed one only reports itself failed.
      let codes: unknown[];
      try {
        codes = (await t.evalScript(scripts.WRITE_TASKS, [...writeKeys, ...taskKeys], args, CONFIRM)) as unknown[];
      } catch (err) {
        if (err instanceof CacheSlotMovingError) await leaveFloors(writes);
        throw err;
      }
      return codes.map(toPutResult);
    };
    /**
     * The user's slot is being migrated (a reshard), so the script can't run, and the entries and
     * views still hold the state before these writes, which other instances would go on reading
     * until a repair. One-key steps still run there: each entry becomes a floor at its write's
     * version (it reads as a miss; nothing older can be filled), and the views and any build lose
     * their anchor and lease, so lists rebuild from Postgres. The write still counts as failed.
     */
    const leaveFloors = async (writes: CacheWrite[]) => {
      await Promise.allSettled([
        ...writes.map((w) => t.evalScript(scripts.FLOOR_TASK, [keys.task("task" in w ? w.task.id : w.id)], ["task" in w ? w.task.version : w.version, options.tombstoneTtlSeconds])),
        t.del([keys.views]),
        t.del([keys.buildLease]),
      ]);
    };
    const readView = async (view: ViewName, order: "asc" | "desc", bound: string, limit: number): Promise<ViewPage | null> => {
      const out = (await t.evalScript(scripts.READ_VIEW, [keys.views, viewKey(keys, view), ...keys.viewSets.slice(0, 3)], [order, bound, limit])) as Array<string | number> | null;
      if (out === null || out === undefined) return null;
      const ids: number[] = [];
      const positions: number[] = [];
      for (let i = 3; i < out.length; i += 2) {
        ids.push(Number(out[i]));
        positions.push(Number(out[i + 1]));
      }
      return { ids, positions, counts: { all: Number(out[0]), open: Number(out[1]), done: Number(out[2]) } };
    };
    const buildKeys = [keys.buildLease, keys.build, ...keys.buildSets];
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
      writeTasks,
      putTask: async (task, epoch) => (await writeTasks([{ task }], epoch))[0] as PutResult,
      putTombstone: async (id, version, epoch) => (await writeTasks([{ id, version, deleted: true }], epoch))[0] as PutResult,
      async putMissing(id: number, epoch: string): Promise<PutResult> {
        return toPutResult(await t.evalScript(scripts.PUT_MISSING, [keys.task(id), keys.epoch], [0, missingTtlSeconds(options), epoch]));
      },
      getViewPage: ({ status, sort, after, limit }) =>
        sort === "new"
          ? readView(`${status}:new`, "desc", after === undefined ? "+inf" : `(${after}`, limit)
          : readView(`${status}:due`, "asc", after === undefined ? "-inf" : `(${after}`, limit),
      async startIndexBuild(leaseMs: number): Promise<IndexBuildStart> {
        const token = randomUUID();
        const state = await t.evalScript(scripts.START_INDEX_BUILD, [keys.views, keys.buildLease, keys.build, ...keys.buildSets], [token, leaseMs]);
        return state === "started" ? { state, token } : { state: state === "exists" ? "exists" : "busy" };
      },
      async addToIndexBuild(token: string, rows: IndexRow[]): Promise<boolean> {
        const args: Array<string | number> = [token];
        for (const r of rows) args.push(r.id, r.version, r.done ? "1" : "0", dueScore(r));
        // Confirmed: a publish that reached a promoted replica lacking these rows would publish views without them.
        return Number(await t.evalScript(scripts.ADD_TO_INDEX_BUILD, buildKeys, args, CONFIRM)) === 1;
      },
      async abandonIndexBuild(token: string): Promise<boolean> {
        return Number(await t.evalScript(scripts.ABANDON_INDEX_BUILD, buildKeys, [token])) === 1;
      },
      async publishIndexBuild(token: string): Promise<boolean> {
        const code = await t.evalScript(scripts.PUBLISH_INDEX_BUILD, [...buildKeys, keys.views, ...keys.viewSets], [token, options.ttlSeconds]);
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
      async readIndex(): Promise<IndexSnapshot | null> {
        const pages = await Promise.all(
          VIEW_ORDER.map((view) => readView(view, view.endsWith(":new") ? "desc" : "asc", view.endsWith(":new") ? "+inf" : "-inf", -1)),
        );
        const versions = (await t.evalScript(scripts.READ_INDEX_VERSIONS, [keys.views], [])) as Array<string | number> | null;
        if (!versions || pages.some((p) => p === null)) return null;
        const snapshot: IndexSnapshot = { versions: new Map(), views: {} as IndexSnapshot["views"] };
        for (let i = 0; i < versions.length; i += 2) if (versions[i] !== "_") snapshot.versions.set(Number(versions[i]), Number(versions[i + 1]));
        VIEW_ORDER.forEach((view, i) => (snapshot.views[view] = (pages[i] as ViewPage).ids));
        return snapshot;
      },
      ttls: (ids) => (ids.length === 0 ? Promise.resolve([]) : t.ttls(ids.map((id) => keys.task(id)))),
      dropIndex: () => t.del([keys.views, ...keys.viewSets, keys.build, ...keys.buildSets, keys.buildLease], CONFIRM),
      async evictTask(id: number): Promise<boolean> {
        return Number(await t.evalScript(scripts.EVICT_TASKS, [keys.task(id)], [options.tombstoneTtlSeconds], CONFIRM)) === 1;
      },
      async flushUser(ids: number[]): Promise<void> {
        // The epoch first: anything prepared before the flush is refused from here on, so evicting
        // afterwards can't be undone by a write that read Postgres before it.
        await t.del([keys.epoch, keys.views, ...keys.viewSets, keys.build, ...keys.buildSets, keys.buildLease], CONFIRM);
        for (let i = 0; i < ids.length; i += 500) {
          const chunk = ids.slice(i, i + 500);
          await t.evalScript(scripts.EVICT_TASKS, chunk.map((id) => keys.task(id)), [options.tombstoneTtlSeconds], CONFIRM);
        }
      },
      async setScratch(name: string, value: string, ttlSeconds: number): Promise<void> {
        await t.set(keys.scratch(name), value, { ttlSeconds: wholeSeconds(ttlSeconds) });
      },
      getScratch: async (name) => t.get(keys.scratch(name)),
      async casScratch(name: string, version: number, value: string, ttlSeconds: number) {
        const code = Number(await t.evalScript(scripts.CAS_SCRATCH, [keys.scratch(name)], [version, value, wholeSeconds(ttlSeconds)]));
        return code === 1 ? "written" : code === 2 ? "unchanged" : "refused";
      },
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
      // Confirmed: a revocation is never undone by a failover (its failure is recorded as a repair).
      await t.set(authKey(options.prefix, key), scripts.REVOKED_VALUE, { ttlSeconds: wholeSeconds(ttlSeconds), ...CONFIRM });
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
