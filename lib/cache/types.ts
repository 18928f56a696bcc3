import type { Task } from "../tasks/schema";

/** What the cache holds for one task id. */
export type CachedTask =
  | { state: "hit"; task: Task }
  /** The task was deleted; `version` is one above its last version, so nothing it ever had may be cached again. */
  | { state: "tombstone"; version: number }
  | { state: "miss" };

/**
 * Outcome of a compare-and-set: written; unchanged, because the cache already holds that very
 * version; refused, because it holds a newer one (or a tombstone); or stale-epoch, because the
 * cache was flushed or restarted after the caller read its epoch, so what the caller read from
 * Postgres may predate a write the flush erased. Only "written" changes the entry.
 */
export type PutResult = "written" | "unchanged" | "refused" | "stale-epoch";

export type IndexBuildStart =
  /** This caller holds the build lease and must call addToIndexBuild / publishIndexBuild. */
  | { state: "started"; token: string }
  /** A complete index already exists. */
  | { state: "exists" }
  /** Another caller (maybe another instance) is building it; read Postgres meanwhile. */
  | { state: "busy" };

/**
 * The cache protocol, in task terms. Every driver (redis, memory) implements exactly these
 * semantics and is checked by the one contract suite in tests/cache/contract.ts.
 *
 * Entries carry the task's version. Every write is a compare-and-set: it lands only when the key is
 * absent or holds an older version (a tombstone included), so the cache never goes backwards.
 * The list index is a set of ids ordered newest first; it is served only when complete.
 */
export interface TaskCacheDriver {
  readonly name: "redis" | "upstash" | "memory";

  /** Returns the entry for `id`: a hit with the task, a tombstone, or a miss. Never throws for an absent key. */
  getTask(id: number): Promise<CachedTask>;

  /** Returns the entries for `ids`, in the same order, in one round trip. */
  getTasks(ids: number[]): Promise<CachedTask[]>;

  /**
   * The cache's epoch, created when absent. Callers read it before reading Postgres and pass it to
   * every write; a flush or restart changes it, and writes carrying the old one are refused.
   */
  epoch(): Promise<string>;

  /** Stores `task` unless the key already holds the same or a newer version (or a tombstone at ≥ that version), or the epoch differs. */
  putTask(task: Task, epoch: string): Promise<PutResult>;

  /**
   * Write-through of a create: puts the task (compare-and-set as putTask) and adds its id to the list
   * index when the index is complete, and to an index being built (unless the entry is already a
   * tombstone). The index changes even when the entry write is refused. One atomic step.
   */
  putCreated(task: Task, epoch: string): Promise<PutResult>;

  /**
   * Write-through of a delete: replaces the entry by a tombstone at `version` (compare-and-set) and
   * removes the id from the list index and from an index being built, even when the entry write is
   * refused. One atomic step.
   */
  putTombstone(id: number, version: number, epoch: string): Promise<PutResult>;

  /**
   * Returns up to `limit` ids from the complete list index, newest first, strictly below `beforeId`
   * when given; `null` when no complete index exists (a miss).
   */
  getIndexPage(args: { beforeId?: number; limit: number }): Promise<number[] | null>;

  /** Takes the build lease for the list index (valid for `leaseMs`), or says why not. */
  startIndexBuild(leaseMs: number): Promise<IndexBuildStart>;

  /** Adds ids read from Postgres to the index being built. Returns false when the lease was lost (stop building). */
  addToIndexBuild(token: string, ids: number[]): Promise<boolean>;

  /**
   * Publishes the built index, minus every id deleted while it was being built. Returns false (and
   * publishes nothing) when the lease was lost.
   */
  publishIndexBuild(token: string): Promise<boolean>;

  /** Every task entry in the cache (hits and tombstones), in batches; order unspecified. For audits. */
  scanEntries(batchSize: number): AsyncGenerator<Array<{ id: number; entry: CachedTask }>>;

  /** Every id in the complete list index, newest first; null when no complete index exists. For audits. */
  readWholeIndex(): Promise<number[] | null>;

  /** Drops the list index (and any build in progress), so the next list read rebuilds it. */
  dropIndex(): Promise<void>;

  /** Seconds each entry has left, in the order asked; -2 when absent. For the cache lab page. */
  ttls(ids: number[]): Promise<number[]>;

  /** Drops everything this app keeps in the cache, epoch included: what a FLUSHALL or a restart does. */
  flush(): Promise<void>;

  /** Round trip to the cache; throws when it is unreachable. */
  ping(): Promise<void>;

  close(): Promise<void>;
}

/** Raised by the resilient wrapper when the breaker is open: the caller should go to Postgres. */
export class CacheUnavailableError extends Error {
  constructor(
    message = "cache unavailable",
    readonly timedOut = false,
  ) {
    super(message);
    this.name = "CacheUnavailableError";
  }
}
