import { randomUUID } from "node:crypto";
import type { Task } from "../tasks/schema";
import { decodeEntry, encodeEntry } from "./keys";
import type { CachedTask, IndexBuildStart, PutResult, TaskCacheDriver } from "./types";
import { jitteredTtl, type CacheTtls } from "./ttl";

export type MemoryDriverOptions = CacheTtls & {
  /** Oldest-written entries are dropped past this many. */
  maxEntries: number;
  /** Injected clock, so tests can expire entries without sleeping. */
  now?: () => number;
};

type Slot = { raw: string; expiresAt: number };

/**
 * The in-process driver: the zero-setup default. Same semantics as the redis driver (checked by the
 * same contract suite); JavaScript's single thread makes each method atomic as a Lua script is.
 */
export function createMemoryDriver(options: MemoryDriverOptions): TaskCacheDriver {
  const now = options.now ?? Date.now;
  const entries = new Map<number, Slot>();
  // Complete index: ids in descending order, or null when absent.
  let index: { ids: number[]; expiresAt: number } | null = null;
  let build: { token: string; expiresAt: number; ids: Set<number>; removed: Set<number> } | null = null;
  let currentEpoch: string | null = null;

  const read = (id: number): string | null => {
    const slot = entries.get(id);
    if (!slot) return null;
    if (slot.expiresAt <= now()) {
      entries.delete(id);
      return null;
    }
    return slot.raw;
  };
  /** As the Lua `compare`: written when absent or older, unchanged when equal, refused when newer. */
  const compare = (id: number, version: number): PutResult => {
    const cur = decodeEntry(read(id));
    if (cur.state === "miss") return "written";
    const held = cur.state === "hit" ? cur.task.version : cur.version;
    return held < version ? "written" : held === version && cur.state === "hit" ? "unchanged" : "refused";
  };
  const write = (id: number, raw: string, ttlSeconds: number) => {
    entries.delete(id);
    entries.set(id, { raw, expiresAt: now() + ttlSeconds * 1000 });
    while (entries.size > options.maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done) break;
      entries.delete(oldest.value);
    }
  };
  const liveIndex = () => {
    if (index && index.expiresAt <= now()) index = null;
    return index;
  };
  const liveBuild = () => {
    if (build && build.expiresAt <= now()) build = null;
    return build;
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

  return {
    name: "memory",
    async getTask(id: number): Promise<CachedTask> {
      return decodeEntry(read(id));
    },
    async getTasks(ids: number[]): Promise<CachedTask[]> {
      return ids.map((id) => decodeEntry(read(id)));
    },
    async epoch(): Promise<string> {
      currentEpoch ??= randomUUID();
      return currentEpoch;
    },
    async putTask(task: Task, epoch: string): Promise<PutResult> {
      if (epoch !== currentEpoch) return "stale-epoch";
      const result = compare(task.id, task.version);
      if (result === "written") write(task.id, encodeEntry(task.version, JSON.stringify(task)), jitteredTtl(options.ttlSeconds));
      return result;
    },
    async putCreated(task: Task, epoch: string): Promise<PutResult> {
      const result: PutResult = epoch !== currentEpoch ? "stale-epoch" : compare(task.id, task.version);
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
      const result: PutResult = epoch !== currentEpoch ? "stale-epoch" : compare(id, version);
      if (result === "written") write(id, encodeEntry(version, ""), options.tombstoneTtlSeconds);
      const idx = liveIndex();
      if (idx) {
        const at = positionBelow(idx.ids, id + 1);
        if (idx.ids[at] === id) idx.ids.splice(at, 1);
      }
      liveBuild()?.removed.add(id);
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
      build = { token: randomUUID(), expiresAt: now() + leaseMs, ids: new Set(), removed: new Set() };
      return { state: "started", token: build.token };
    },
    async addToIndexBuild(token: string, ids: number[]): Promise<boolean> {
      const b = liveBuild();
      if (!b || b.token !== token) return false;
      for (const id of ids) b.ids.add(id);
      return true;
    },
    async publishIndexBuild(token: string): Promise<boolean> {
      const b = liveBuild();
      if (!b || b.token !== token) return false;
      const ids = [...b.ids].filter((id) => !b.removed.has(id)).sort((a, b2) => b2 - a);
      index = { ids, expiresAt: now() + options.ttlSeconds * 1000 };
      build = null;
      return true;
    },
    async *scanEntries(batchSize: number) {
      const ids = [...entries.keys()];
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
        const slot = read(id) === null ? undefined : entries.get(id);
        return slot ? Math.ceil((slot.expiresAt - now()) / 1000) : -2;
      });
    },
    async flush(): Promise<void> {
      entries.clear();
      index = null;
      build = null;
      currentEpoch = null;
    },
    async dropIndex(): Promise<void> {
      index = null;
      build = null;
    },
    async ping(): Promise<void> {},
    async close(): Promise<void> {
      entries.clear();
      index = null;
      build = null;
    },
  };
}
