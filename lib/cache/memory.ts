import "server-only";
import { randomUUID } from "node:crypto";
import { dueScore } from "../tasks/schema";
import { assertScratchName, assertUserId, decodeEntry, encodeEntry, floorOf, VIEW_ORDER, type ViewName } from "./keys";
import { FILLING_PREFIX, isMarker, REVOKED_VALUE } from "./scripts";
import type { CacheDriver, CachedTask, CacheWrite, IndexBuildStart, IndexRow, IndexSnapshot, PutResult, UserTaskCache, ViewPage } from "./types";
import { jitteredTtl, missingTtlSeconds, type CacheTtls } from "./ttl";

export type MemoryDriverOptions = CacheTtls & {
  /** Oldest-written entries (of all users together) are dropped past this many. */
  maxEntries: number;
  /** Injected clock, so tests can expire entries without sleeping. */
  now?: () => number;
};

type Slot = { raw: string; expiresAt: number };

/** One view: [position, id] pairs ascending by position (a newest-first view is read from the end). */
class SortedView {
  private items: Array<[number, number]> = [];
  private readonly positionOf = new Map<number, number>();

  get size(): number {
    return this.items.length;
  }

  /** Index of the first item whose position is >= `position`. */
  private lowerBound(position: number): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.items[mid] as [number, number])[0] < position) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(id: number, position: number): void {
    this.remove(id);
    this.items.splice(this.lowerBound(position), 0, [position, id]);
    this.positionOf.set(id, position);
  }

  remove(id: number): void {
    const position = this.positionOf.get(id);
    if (position === undefined) return;
    this.items.splice(this.lowerBound(position), 1);
    this.positionOf.delete(id);
  }

  /** Ascending, strictly after `after`. */
  ascending(after: number | undefined, limit: number): Array<[number, number]> {
    const start = after === undefined ? 0 : this.lowerBound(after + 0.5);
    return this.items.slice(start, limit < 0 ? undefined : start + limit);
  }

  /** Descending, strictly before `before`. */
  descending(before: number | undefined, limit: number): Array<[number, number]> {
    const end = before === undefined ? this.items.length : this.lowerBound(before);
    const start = limit < 0 ? 0 : Math.max(0, end - limit);
    return this.items.slice(start, end).reverse();
  }
}

/** A user's views (or views being built): id -> version of its membership, and the six views. */
type Views = { versions: Map<number, number>; sets: Record<ViewName, SortedView> };

function emptyViews(): Views {
  return { versions: new Map(), sets: Object.fromEntries(VIEW_ORDER.map((v) => [v, new SortedView()])) as Record<ViewName, SortedView> };
}

/** As the Lua APPLY: a state lands only when newer than the one the views were last set from. */
function applyState(views: Views, id: number, version: number, state: { done: boolean; due: number } | null): void {
  const held = views.versions.get(id);
  if (held !== undefined && held >= version) return;
  for (const v of VIEW_ORDER) views.sets[v].remove(id);
  if (state) {
    const status = state.done ? "done" : "open";
    views.sets["all:new"].add(id, id);
    views.sets[`${status}:new`].add(id, id);
    views.sets["all:due"].add(id, state.due);
    views.sets[`${status}:due`].add(id, state.due);
  }
  views.versions.set(id, version);
}

/** What one user has in the cache besides entries: the views, a build in progress, the epoch. */
type UserState = {
  views: (Views & { expiresAt: number }) | null;
  build: (Views & { token: string; expiresAt: number }) | null;
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
  const scratch = new Map<string, Slot>();

  const stateOf = (userId: string): UserState => {
    let state = users.get(userId);
    if (!state) users.set(userId, (state = { views: null, build: null, epoch: null }));
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
  /** As the Lua `compare`, on a raw value: written when absent, older or a floor at or below; unchanged when equal; refused otherwise. */
  const compareRaw = (raw: string | null, version: number): Exclude<PutResult, "stale-epoch"> => {
    const floor = floorOf(raw);
    if (floor !== null) return version >= floor ? "written" : "refused";
    const bar = raw === null ? -1 : raw.indexOf("|");
    const held = raw === null ? NaN : Number(raw.slice(0, bar));
    if (raw === null || bar < 1 || !Number.isSafeInteger(held)) return "written";
    const live = bar < raw.length - 1;
    return held < version ? "written" : held === version && live ? "unchanged" : "refused";
  };

  const forUser = (userId: string): UserTaskCache => {
    assertUserId(userId);
    const entryKey = (id: number) => `${userId}/${id}`;
    // Looked up on every call, never kept: a flush replaces the state (and so the epoch).
    const st = () => stateOf(userId);
    const read = (id: number) => readSlot(entries, entryKey(id));
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
    const liveViews = () => {
      const state = st();
      if (state.views && state.views.expiresAt <= now()) state.views = null;
      return state.views;
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
    const evict = (id: number): boolean => {
      const entry = decodeEntry(read(id));
      if (entry.state !== "hit") return false;
      write(id, `${entry.task.version}^`, options.tombstoneTtlSeconds);
      return true;
    };
    const writeTasks = async (writes: CacheWrite[], epoch: string): Promise<PutResult[]> => {
      const sameEpoch = epoch === st().epoch;
      const views = liveViews();
      const build = liveBuild();
      const results = writes.map((w): PutResult => {
        const id = "task" in w ? w.task.id : w.id;
        const version = "task" in w ? w.task.version : w.version;
        let result: PutResult = "stale-epoch";
        if (sameEpoch) {
          result = compareRaw(read(id), version);
          if (result === "written") {
            if ("task" in w) write(id, encodeEntry(version, JSON.stringify(w.task)), jitteredTtl(options.ttlSeconds));
            else write(id, encodeEntry(version, ""), options.tombstoneTtlSeconds);
          }
        }
        const state = "task" in w ? { done: w.task.done, due: dueScore(w.task) } : null;
        if (views) applyState(views, id, version, state);
        if (build) applyState(build, id, version, state);
        return result;
      });
      if (views) views.expiresAt = now() + options.ttlSeconds * 1000;
      return results;
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
      writeTasks,
      putTask: async (task, epoch) => (await writeTasks([{ task }], epoch))[0] as PutResult,
      putTombstone: async (id, version, epoch) => (await writeTasks([{ id, version, deleted: true }], epoch))[0] as PutResult,
      async putMissing(id: number, epoch: string): Promise<PutResult> {
        if (epoch !== st().epoch) return "stale-epoch";
        const result = compareRaw(read(id), 0);
        if (result === "written") write(id, encodeEntry(0, ""), missingTtlSeconds(options));
        return result;
      },
      async getViewPage({ status, sort, after, limit }): Promise<ViewPage | null> {
        const views = liveViews();
        if (!views) return null;
        const set = views.sets[`${status}:${sort}`];
        const items = sort === "new" ? set.descending(after, limit) : set.ascending(after, limit);
        return {
          ids: items.map((i) => i[1]),
          positions: items.map((i) => i[0]),
          counts: { all: views.sets["all:new"].size, open: views.sets["open:new"].size, done: views.sets["done:new"].size },
        };
      },
      async startIndexBuild(leaseMs: number): Promise<IndexBuildStart> {
        if (liveViews()) return { state: "exists" };
        if (liveBuild()) return { state: "busy" };
        const build = { ...emptyViews(), token: randomUUID(), expiresAt: now() + leaseMs };
        st().build = build;
        return { state: "started", token: build.token };
      },
      async addToIndexBuild(token: string, rows: IndexRow[]): Promise<boolean> {
        const b = liveBuild();
        if (!b || b.token !== token) return false;
        for (const r of rows) applyState(b, r.id, r.version, { done: r.done, due: dueScore(r) });
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
        st().views = { versions: b.versions, sets: b.sets, expiresAt: now() + options.ttlSeconds * 1000 };
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
      async readIndex(): Promise<IndexSnapshot | null> {
        const views = liveViews();
        if (!views) return null;
        const snapshot: IndexSnapshot = { versions: new Map(views.versions), views: {} as IndexSnapshot["views"] };
        for (const v of VIEW_ORDER) {
          const set = views.sets[v];
          snapshot.views[v] = (v.endsWith(":new") ? set.descending(undefined, -1) : set.ascending(undefined, -1)).map((i) => i[1]);
        }
        return snapshot;
      },
      async ttls(ids: number[]): Promise<number[]> {
        return ids.map((id) => {
          const slot = read(id) === null ? undefined : entries.get(entryKey(id));
          return slot ? Math.ceil((slot.expiresAt - now()) / 1000) : -2;
        });
      },
      async dropIndex(): Promise<void> {
        st().views = null;
        st().build = null;
      },
      async evictTask(id: number): Promise<boolean> {
        return evict(id);
      },
      async flushUser(ids: number[]): Promise<void> {
        const state = st();
        state.epoch = null;
        state.views = null;
        state.build = null;
        for (const id of ids) evict(id);
      },
      async setScratch(name: string, value: string, ttlSeconds: number): Promise<void> {
        scratch.set(`${userId}/${assertScratchName(name)}`, { raw: value, expiresAt: now() + ttlSeconds * 1000 });
      },
      async getScratch(name: string): Promise<string | null> {
        return readSlot(scratch, `${userId}/${assertScratchName(name)}`);
      },
      async casScratch(name: string, version: number, value: string, ttlSeconds: number) {
        const key = `${userId}/${assertScratchName(name)}`;
        const result = compareRaw(readSlot(scratch, key), version);
        if (result === "written") scratch.set(key, { raw: encodeEntry(version, value), expiresAt: now() + ttlSeconds * 1000 });
        return result;
      },
    };
  };

  const putValue = (key: string, value: string, ttlSeconds?: number) => {
    values.set(key, { raw: value, expiresAt: ttlSeconds === undefined ? Infinity : now() + Math.max(1, Math.ceil(ttlSeconds)) * 1000 });
  };

  const clear = () => {
    scratch.clear();
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
      const withIndex = [...users].flatMap(([userId, state]) => (state.views && state.views.expiresAt > now() ? [userId] : []));
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
