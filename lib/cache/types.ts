import "server-only";
import type { CacheDriverName } from "../names";
import type { Task, TaskCounts, TaskSort, TaskStatus } from "../tasks/schema";
import type { ViewName } from "./keys";

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

/** One task's place in the views: live (with what it sorts by) or deleted. */
export type CacheWrite = { task: Task } | { id: number; version: number; deleted: true };

/** A row a views build reads from Postgres. */
export type IndexRow = Pick<Task, "id" | "version" | "done" | "dueOn">;

/** One page of a view: ids in the view's order, each with its position (the cursor to continue after it), and the user's counts. */
export type ViewPage = { ids: number[]; positions: number[]; counts: TaskCounts };

/** What the views hold, whole: for audits and tests only. */
export type IndexSnapshot = {
  /** id -> the version its membership was last set from (deleted ids included). */
  versions: Map<number, number>;
  /** Each view's ids in its order. */
  views: Record<ViewName, number[]>;
};

/**
 * One user's task cache: the cache protocol, in task terms. Every key lives under that user's hash
 * tag (`<prefix>:{u:<userId>}:...`), so a script touching several of them stays in one Redis
 * Cluster slot, and nothing here can reach another user's tasks. Every driver (redis, upstash,
 * memory) implements exactly these semantics and is checked by the one contract suite in
 * tests/cache/contract.ts.
 *
 * Entries carry the task's version. Every write is a compare-and-set: it lands only when the key is
 * absent or holds an older version (a tombstone included), so the cache never goes backwards.
 * The user's list views (all / open / done, newest first and by due date) are written through by
 * the same atomic step as the entries, version-guarded per id, and served only when complete;
 * counts come from them in O(1). The epoch, the build lease and the views are the user's own.
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

  /**
   * Writes tasks and tombstones through, in one atomic step: each entry is a compare-and-set (it
   * lands unless the key holds the same or a newer version, a tombstone at ≥ that version, or a
   * floor above it; and only in `epoch`), and, whatever that outcome, each item's state is applied
   * to the complete views and to views being built, unless they already reflect a version as new.
   * Results in the order given.
   */
  writeTasks(writes: CacheWrite[], epoch: string): Promise<PutResult[]>;

  /** writeTasks of one live task: a write-through, a fill or a repair. */
  putTask(task: Task, epoch: string): Promise<PutResult>;

  /** writeTasks of one tombstone at `version` (the deleted state's): the id leaves every view. */
  putTombstone(id: number, version: number, epoch: string): Promise<PutResult>;

  /**
   * Negative entry for an id Postgres does not have (for this user): a tombstone at version 0, with
   * a short TTL, written only where nothing is cached. Any create or restore of that id carries a
   * version ≥ 1 and so outranks it through the ordinary compare-and-set; the views are not touched.
   */
  putMissing(id: number, epoch: string): Promise<PutResult>;

  /**
   * One page of a complete view, `limit` ids at most, after `after` (a position this view returned)
   * when given, plus the user's counts; null when the views are not complete (a miss).
   */
  getViewPage(args: { status: TaskStatus; sort: TaskSort; after?: number; limit: number }): Promise<ViewPage | null>;

  /** Takes the build lease for the views (valid for `leaseMs`), or says why not. */
  startIndexBuild(leaseMs: number): Promise<IndexBuildStart>;

  /** Applies rows read from Postgres to the views being built. Returns false when the lease was lost (stop building). */
  addToIndexBuild(token: string, rows: IndexRow[]): Promise<boolean>;

  /** Publishes the built views. Returns false (and publishes nothing) when the lease was lost. */
  publishIndexBuild(token: string): Promise<boolean>;

  /** Gives up a build this token holds (its Postgres read failed), so nobody waits for its lease to run out. False when the lease was no longer its. */
  abandonIndexBuild(token: string): Promise<boolean>;

  /**
   * Every task entry of this user in the cache (hits and tombstones), in batches; order unspecified.
   * Costs a walk of the WHOLE keyspace (SCAN MATCH), whatever this user holds: tests and tools
   * only, never a request path (the per-user audit reads entries by id instead).
   */
  scanEntries(batchSize: number): AsyncGenerator<Array<{ id: number; entry: CachedTask }>>;

  /** The complete views, whole; null when they are not complete. For audits and tests. */
  readIndex(): Promise<IndexSnapshot | null>;

  /** Drops the views (and any build in progress), so the next list read rebuilds them. */
  dropIndex(): Promise<void>;

  /** Seconds each entry has left, in the order asked; -2 when absent. For the cache lab page. */
  ttls(ids: number[]): Promise<number[]>;

  /**
   * Evicts a live entry: it becomes a floor at its version, which reads as a miss but refuses any
   * older version (so a slow fill can't put one back). False for a tombstone or an absent entry.
   */
  evictTask(id: number): Promise<boolean>;

  /** "Flush my cache": ends the epoch (writes prepared before it are refused), drops the views and evicts the entries of `ids` as evictTask does. */
  flushUser(ids: number[]): Promise<void>;

  /** Cache-lab scratch values under this user's hash tag: a plain SET and GET, no protocol (the race demo's naive path). */
  setScratch(name: string, value: string, ttlSeconds: number): Promise<void>;
  getScratch(name: string): Promise<string | null>;

  /** The entries' versioned compare-and-set on a scratch key (the race demo's real path); the value is stored as `<version>|<value>`. */
  casScratch(name: string, version: number, value: string, ttlSeconds: number): Promise<Exclude<PutResult, "stale-epoch">>;
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

  /** The users that have complete views, in batches as above (a user may appear twice). For the whole-store audit: it walks the whole keyspace. */
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

  /**
   * Calls `listener` when some of the cache's keys are now served by another node than before (a
   * Redis Cluster failover or reshard, ADR 014): what that node holds may lack writes whose
   * repairs other instances recorded, so the store reads the repair ledger again before it trusts
   * the cache. Returns a function that unsubscribes. Absent on drivers with a single node.
   */
  onTopologyChange?(listener: () => void): () => void;

  close(): Promise<void>;
}

/**
 * Why a cache call was not answered: the breaker refused it, it timed out, or the client is
 * disconnected; or "unconfirmed": the cache answered, but the call can't count as done (on a Redis
 * Cluster, ADR 014): a write fewer replicas than required have (a failover could lose it), an
 * answer from a slot that just moved to another master, a command on several keys of a slot being
 * migrated. A write then counts as not written (the store records a repair); the breaker doesn't
 * count any of these as a failure. "node-down": one master of a cluster is known to be unreachable
 * (the call failed at once, without trying); the breaker doesn't count that either, so the other
 * masters' users stay on the cache.
 */
export type CacheUnavailableReason = "breaker-open" | "timeout" | "disconnected" | "unconfirmed" | "node-down";

/** Raised by the resilient wrapper (and a disconnected client, or an unconfirmed call): the caller should go to Postgres. */
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

/**
 * A Redis Cluster slot is being migrated to another master (a reshard): a command on several of
 * its keys is refused (TRYAGAIN) until the move is done, while one on a single key still runs.
 */
export class CacheSlotMovingError extends CacheUnavailableError {
  constructor(message = "cache slot being migrated to another master") {
    super(message, "unconfirmed");
    this.name = "CacheSlotMovingError";
  }
}
