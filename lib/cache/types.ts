import "server-only";
import type { CacheDriverName } from "../names";
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
 * One user's task cache: the cache protocol, in task terms. Every key lives under that user's hash
 * tag (`<prefix>:{u:<userId>}:...`), so a script touching several of them stays in one Redis
 * Cluster slot, and nothing here can reach another user's tasks. Every driver (redis, upstash,
 * memory) implements exactly these semantics and is checked by the one contract suite in
 * tests/cache/contract.ts.
 *
 * Entries carry the task's version. Every write is a compare-and-set: it lands only when the key is
 * absent or holds an older version (a tombstone included), so the cache never goes backwards.
 * The list index is a set of the user's ids ordered newest first; it is served only when complete.
 * The epoch, the index build lease and the index itself are the user's own.
 */
export interface UserTaskCache {
  readonly userId: string;

  /** Returns the entry for `id`: a hit with the task, a tombstone, or a miss. Never throws for an absent key. */
  getTask(id: number): Promise<CachedTask>;

  /** Returns the entries for `ids`, in the same order, in one round trip. */
  getTasks(ids: number[]): Promise<CachedTask[]>;

  /**
   * The user's cache epoch, created when absent. Callers read it before reading Postgres and pass
   * it to every write; a flush or restart changes it, and writes carrying the old one are refused.
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
   * Negative entry for an id Postgres does not have (for this user): a tombstone at version 0, with
   * a short TTL, written only where nothing is cached. Any create or restore of that id carries a
   * version ≥ 1 and so outranks it through the ordinary compare-and-set; the list index is not touched.
   */
  putMissing(id: number, epoch: string): Promise<PutResult>;

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

  /** Gives up a build this token holds (its Postgres read failed), so nobody waits for its lease to run out. False when the lease was no longer its. */
  abandonIndexBuild(token: string): Promise<boolean>;

  /**
   * Every task entry of this user in the cache (hits and tombstones), in batches; order unspecified.
   * Costs a walk of the WHOLE keyspace (SCAN MATCH), whatever this user holds: tests and tools
   * only, never a request path (the per-user audit reads entries by id instead).
   */
  scanEntries(batchSize: number): AsyncGenerator<Array<{ id: number; entry: CachedTask }>>;

  /** Every id in the complete list index, newest first; null when no complete index exists. For audits. */
  readWholeIndex(): Promise<number[] | null>;

  /** Drops the list index (and any build in progress), so the next list read rebuilds it. */
  dropIndex(): Promise<void>;

  /** Seconds each entry has left, in the order asked; -2 when absent. For the cache lab page. */
  ttls(ids: number[]): Promise<number[]>;
}

/**
 * A cache connection: per-user task caches, plus the few things that span users (the whole-store
 * audit, better-auth's session and API-key copies, flush, ping).
 */
export interface CacheDriver {
  readonly name: CacheDriverName;

  /** The task cache of one user. Cheap: it only names keys. */
  forUser(userId: string): UserTaskCache;

  /**
   * Every task entry of every user (hits and tombstones), in batches of about `batchSize` keys
   * scanned (a batch may be empty), so each step is one bounded call. For the whole-store audit:
   * it walks the whole keyspace.
   */
  scanAllEntries(batchSize: number): AsyncGenerator<Array<{ userId: string; id: number; entry: CachedTask }>>;

  /** The users that have a complete list index, in batches as above (a user may appear twice). For the whole-store audit: it walks the whole keyspace. */
  scanAllIndexes(batchSize: number): AsyncGenerator<string[]>;

  // ---- auth values: better-auth's sessions and our API-key lookups, one key at a time ----------
  // A value can be *revoked*: replaced by a marker that reads as absent and that no later set or
  // fill can overwrite while it lives, so a request that read Postgres before a sign-out or a key
  // deletion can't put the revoked value back (the same idea as a task tombstone).

  // A miss is filled in two steps, so a revocation or a flush that lands while the fill reads
  // Postgres makes the fill refuse itself: `beginFill` parks a ticket in the empty key (before
  // the read), `fillValue` writes only while that ticket is still there (after it).

  /** The value under `key`; null when absent, revoked or being filled. */
  getValue(key: string): Promise<string | null>;

  /** Stores a value (expiring after `ttlSeconds` when given) unless the key is revoked; returns whether it was written. */
  setValue(key: string, value: string, ttlSeconds?: number): Promise<boolean>;

  /** Replaces a live value; writes nothing when the key is absent, revoked or being filled. Returns whether it was written. */
  replaceValue(key: string, value: string, ttlSeconds: number): Promise<boolean>;

  /** Parks a fill ticket (living `ttlSeconds`) in an empty key; null when the key holds anything (a value, a revocation, another fill). */
  beginFill(key: string, ttlSeconds: number): Promise<string | null>;

  /** Stores a value read from Postgres only while the key still holds `ticket`; returns whether it was written. */
  fillValue(key: string, value: string, ttlSeconds: number, ticket: string): Promise<boolean>;

  /** Replaces the value by a revocation marker that lives `ttlSeconds`. */
  revokeValue(key: string, ttlSeconds: number): Promise<void>;

  /** Deletes a value; absent is fine. For values that are never revoked (lists, counters). */
  deleteValue(key: string): Promise<void>;

  /** Returns the value and deletes it, atomically (one-time tokens); null when absent or revoked. */
  getAndDeleteValue(key: string): Promise<string | null>;

  /** Adds one to a counter, creating it with `ttlSeconds` to live; returns the new count. */
  incrementValue(key: string, ttlSeconds: number): Promise<number>;

  /**
   * Takes one back from a counter made by incrementValue, keeping its ttl and never going below 0;
   * an absent counter stays absent. Returns the new count (0 when absent).
   */
  decrementValue(key: string): Promise<number>;

  /** Drops everything this app keeps in the cache, epochs included: what a FLUSHALL or a restart does. */
  flush(): Promise<void>;

  /** Round trip to the cache; throws when it is unreachable. */
  ping(): Promise<void>;

  close(): Promise<void>;
}

/** Why a cache call was not answered: the breaker refused it, it timed out, or the client is disconnected. */
export type CacheUnavailableReason = "breaker-open" | "timeout" | "disconnected";

/** Raised by the resilient wrapper (and a disconnected client): the caller should go to Postgres. */
export class CacheUnavailableError extends Error {
  constructor(
    message = "cache unavailable",
    readonly reason: CacheUnavailableReason = "disconnected",
  ) {
    super(message);
    this.name = "CacheUnavailableError";
  }
  get timedOut(): boolean {
    return this.reason === "timeout";
  }
}
