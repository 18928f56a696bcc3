import "server-only";
import { randomUUID } from "node:crypto";
import type { Task } from "../tasks/schema";
import { assertUserId, decodeEntry, encodeEntry } from "./keys";
import { FILLING_PREFIX, isMarker, REVOKED_VALUE } from "./scripts";
import type { CacheDriver, CachedTask, IndexBuildStart, PutResult, UserTaskCache } from "./types";
import { jitteredTtl, missingTtlSeconds, type CacheTtls } from "./ttl";

export type MemoryDriverOptions = CacheTtls & {
  /** Oldest-written entries (of all users together) are dropped past this many. */
  maxEntries: number;
  /** Injected clock, so tests can expire entries without sleeping. */
  now?: () => number;
};

type Slot = { raw: string; expiresAt: number };

/** What one user has in the cache besides entries: the list index, a build in progress, the epoch. */
type UserState = {
  // Complete index: ids in descending order, or null when absent.
  index: { ids: number[]; expiresAt: number } | null;
  build: { token: string; expiresAt: number; ids: Set<number>; removed: Set<number> } | null;
  epoch: string | null;
};

/**
 * The in-process driver: the zero-setup default. Same semantics as the redis driver (checked by the
 * same contract suite); JavaScript's single thread makes each method atomic as a Lua script is.
 */
export function createMemoryDriver(options: MemoryDriverOptions): CacheDriver {
  const now = options.now ?? Date.now;
  // Keyed `<userId>/<taskId>`; Map order is write order, which is what eviction drops first.
  const entries = new Map<string, Slot>();
  const users = new Map<string, UserState>();
  const values = new Map<string, Slot>();

  const stateOf = (userId: string): UserState => {
    let state = users.get(userId);
    if (!state) users.set(userId, (state = { index: null, build: null, epoch: null }));
    return state;
  };
  const readSlot = (map: Map<string, Slot>, key: string): string | null => {
    const slot = map.get(key);
    if (!slot) return null;
    if (slot.expiresAt <= now()) {
      map.delete(key);
      return null;
    }
    return slot.raw;
  };
  // First position in a descending array whose value is < id.
  const positionBelow = (ids: number[], id: number) => {
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ids[mid] as number) >= id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  const forUser = (userId: string): UserTaskCache => {
    assertUserId(userId);
    const entryKey = (id: number) => `${userId}/${id}`;
    // Looked up on every call, never kept: a flush replaces the state (and so the epoch).
    const st = () => stateOf(userId);
    const read = (id: number) => readSlot(entries, entryKey(id));
    /** As the Lua `compare`: written when absent or older, unchanged when equal, refused when newer. */
    const compare = (id: number, version: number): PutResult => {
      const cur = decodeEntry(read(id));
      if (cur.state === "miss") return "written";
      const held = cur.state === "hit" ? cur.task.version : cur.version;
      return held < version ? "written" : held === version && cur.state === "hit" ? "unchanged" : "refused";
    };
    const write = (id: number, raw: string, ttlSeconds: number) => {
      const key = entryKey(id);
      entries.delete(key);
      entries.set(key, { raw, expiresAt: now() + ttlSeconds * 1000 });
      while (entries.size > options.maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done) break;
        entries.delete(oldest.value);
      }
    };
    const liveIndex = () => {
      const state = st();
      if (state.index && state.index.expiresAt <= now()) state.index = null;
      return state.index;
    };
    const liveBuild = () => {
      const state = st();
      if (state.build && state.build.expiresAt <= now()) state.build = null;
      return state.build;
    };
    const ownIds = () => {
      const head = `${userId}/`;
      return [...entries.keys()].filter((k) => k.startsWith(head)).map((k) => Number(k.slice(head.length)));
    };

    return {
      userId,
      async getTask(id: number): Promise<CachedTask> {
        return decodeEntry(read(id));
      },
      async getTasks(ids: number[]): Promise<CachedTask[]> {
        return ids.map((id) => decodeEntry(read(id)));
      },
      async epoch(): Promise<string> {
        const state = st();
        state.epoch ??= randomUUID();
        return state.epoch;
      },
      async putTask(task: Task, epoch: string): Promise<PutResult> {
        if (epoch !== st().epoch) return "stale-epoch";
        const result = compare(task.id, task.version);
        if (result === "written") write(task.id, encodeEntry(task.version, JSON.stringify(task)), jitteredTtl(options.ttlSeconds));
        return result;
      },
      async putCreated(task: Task, epoch: string): Promise<PutResult> {
        const result: PutResult = epoch !== st().epoch ? "stale-epoch" : compare(task.id, task.version);
        if (result === "written") write(task.id, encodeEntry(task.version, JSON.stringify(task)), jitteredTtl(options.ttlSeconds));
        if (decodeEntry(read(task.id)).state === "tombstone") return result;
        const idx = liveIndex();
        if (idx) {
          const at = positionBelow(idx.ids, task.id);
          if (idx.ids[at - 1] !== task.id) idx.ids.splice(at, 0, task.id);
          idx.expiresAt = now() + options.ttlSeconds * 1000;
        }
        liveBuild()?.ids.add(task.id);
        return result;
      },
      async putTombstone(id: number, version: number, epoch: string): Promise<PutResult> {
        const result: PutResult = epoch !== st().epoch ? "stale-epoch" : compare(id, version);
        if (result === "written") write(id, encodeEntry(version, ""), options.tombstoneTtlSeconds);
        const idx = liveIndex();
        if (idx) {
          const at = positionBelow(idx.ids, id + 1);
          if (idx.ids[at] === id) idx.ids.splice(at, 1);
        }
        liveBuild()?.removed.add(id);
        return result;
      },
      async putMissing(id: number, epoch: string): Promise<PutResult> {
        if (epoch !== st().epoch) return "stale-epoch";
        const result = compare(id, 0);
        if (result === "written") write(id, encodeEntry(0, ""), missingTtlSeconds(options));
        return result;
      },
      async getIndexPage({ beforeId, limit }): Promise<number[] | null> {
        const idx = liveIndex();
        if (!idx) return null;
        const start = beforeId === undefined ? 0 : positionBelow(idx.ids, beforeId);
        return idx.ids.slice(start, start + limit);
      },
      async startIndexBuild(leaseMs: number): Promise<IndexBuildStart> {
        if (liveIndex()) return { state: "exists" };
        if (liveBuild()) return { state: "busy" };
        const build = { token: randomUUID(), expiresAt: now() + leaseMs, ids: new Set<number>(), removed: new Set<number>() };
        st().build = build;
        return { state: "started", token: build.token };
      },
      async addToIndexBuild(token: string, ids: number[]): Promise<boolean> {
        const b = liveBuild();
        if (!b || b.token !== token) return false;
        for (const id of ids) b.ids.add(id);
        return true;
      },
      async abandonIndexBuild(token: string): Promise<boolean> {
        const b = liveBuild();
        if (!b || b.token !== token) return false;
        st().build = null;
        return true;
      },
      async publishIndexBuild(token: string): Promise<boolean> {
        const b = liveBuild();
        if (!b || b.token !== token) return false;
        const ids = [...b.ids].filter((id) => !b.removed.has(id)).sort((a, b2) => b2 - a);
        st().index = { ids, expiresAt: now() + options.ttlSeconds * 1000 };
        st().build = null;
        return true;
      },
      async *scanEntries(batchSize: number) {
        const ids = ownIds();
        for (let i = 0; i < ids.length; i += batchSize) {
          const batch = ids.slice(i, i + batchSize).flatMap((id) => {
            const entry = decodeEntry(read(id));
            return entry.state === "miss" ? [] : [{ id, entry }];
          });
          if (batch.length > 0) yield batch;
        }
      },
      async readWholeIndex(): Promise<number[] | null> {
        const idx = liveIndex();
        return idx ? [...idx.ids] : null;
      },
      async ttls(ids: number[]): Promise<number[]> {
        return ids.map((id) => {
          const slot = read(id) === null ? undefined : entries.get(entryKey(id));
          return slot ? Math.ceil((slot.expiresAt - now()) / 1000) : -2;
        });
      },
      async dropIndex(): Promise<void> {
        st().index = null;
        st().build = null;
      },
    };
  };

  const putValue = (key: string, value: string, ttlSeconds?: number) => {
    values.set(key, { raw: value, expiresAt: ttlSeconds === undefined ? Infinity : now() + Math.max(1, Math.ceil(ttlSeconds)) * 1000 });
  };

  const clear = () => {
    entries.clear();
    users.clear();
    values.clear();
  };

  return {
    name: "memory",
    forUser,
    async *scanAllEntries(batchSize: number) {
      const keys = [...entries.keys()];
      for (let i = 0; i < keys.length; i += batchSize) {
        const batch = keys.slice(i, i + batchSize).flatMap((key) => {
          const entry = decodeEntry(readSlot(entries, key));
          const slash = key.lastIndexOf("/");
          return entry.state === "miss" ? [] : [{ userId: key.slice(0, slash), id: Number(key.slice(slash + 1)), entry }];
        });
        if (batch.length > 0) yield batch;
      }
    },
    async *scanAllIndexes(batchSize: number) {
      const withIndex = [...users].flatMap(([userId, state]) => (state.index && state.index.expiresAt > now() ? [userId] : []));
      for (let i = 0; i < withIndex.length; i += batchSize) yield withIndex.slice(i, i + batchSize);
    },
    async getValue(key: string): Promise<string | null> {
      const value = readSlot(values, key);
      return value === null || isMarker(value) ? null : value;
    },
    async replaceValue(key: string, value: string, ttlSeconds: number): Promise<boolean> {
      const current = readSlot(values, key);
      if (current === null || isMarker(current)) return false;
      putValue(key, value, ttlSeconds);
      return true;
    },
    async beginFill(key: string, ttlSeconds: number): Promise<string | null> {
      if (readSlot(values, key) !== null) return null;
      const ticket = `${FILLING_PREFIX}${randomUUID()}`;
      putValue(key, ticket, ttlSeconds);
      return ticket;
    },
    async setValue(key: string, value: string, ttlSeconds?: number): Promise<boolean> {
      if (readSlot(values, key) === REVOKED_VALUE) return false;
      putValue(key, value, ttlSeconds);
      return true;
    },
    async fillValue(key: string, value: string, ttlSeconds: number, ticket: string): Promise<boolean> {
      if (readSlot(values, key) !== ticket) return false;
      putValue(key, value, ttlSeconds);
      return true;
    },
    async revokeValue(key: string, ttlSeconds: number): Promise<void> {
      putValue(key, REVOKED_VALUE, ttlSeconds);
    },
    async deleteValue(key: string): Promise<void> {
      values.delete(key);
    },
    async getAndDeleteValue(key: string): Promise<string | null> {
      const value = readSlot(values, key);
      if (value === null || isMarker(value)) return null;
      values.delete(key);
      return value;
    },
    async incrementValue(key: string, ttlSeconds: number): Promise<number> {
      const current = readSlot(values, key);
      const next = (current === null ? 0 : Number(current)) + 1;
      const slot = values.get(key);
      if (current !== null && slot) slot.raw = String(next);
      else putValue(key, String(next), ttlSeconds);
      return next;
    },
    async decrementValue(key: string): Promise<number> {
      const current = Number(readSlot(values, key) ?? 0);
      const slot = values.get(key);
      if (!slot || !(current > 0)) return 0;
      slot.raw = String(current - 1);
      return current - 1;
    },
    async flush(): Promise<void> {
      clear();
    },
    async ping(): Promise<void> {},
    async close(): Promise<void> {
      clear();
    },
  };
}
