import "server-only";
import type { CacheCallOutcome, CacheOperation } from "../cache";
import type { CacheEventFields, CacheEventKind } from "../cacheEvents";
import type { BreakerState } from "../names";
import type { TaskStore } from "./taskStore";

/** The dependencies behind a circuit breaker. */
export type GuardedDependency = "cache" | "database";

/**
 * Everything a store reports about itself, to one observer given to `new TaskStore({ observer })`:
 * lib/metrics.ts implements it for /api/metrics (createTaskStoreFromEnv passes it), tests pass
 * their own. Every method is optional, and each is called synchronously on the path it reports,
 * so it must be cheap and must not throw. The cache lab's per-user events are kept by the store
 * itself (`store.events`), not here.
 */
export interface StoreObserver {
  /** Once, when the store is made: for values read only when asked (the metrics gauges read its breakers and ledger at scrape time). */
  onStoreCreated?(store: TaskStore): void;
  /** A Postgres statement (or transaction) the store ran, and how long it took. */
  onQuery?(seconds: number, outcome: "ok" | "error"): void;
  /** A call to the store's cache (its own, and the auth storage's and rate limiter's, which share it); "rejected": refused at once by the open breaker. */
  onCacheCall?(operation: CacheOperation, outcome: CacheCallOutcome, seconds: number): void;
  /** Every cache event the store records, reads included, with its owner when it has one (what the cache lab lists, and more). */
  onCacheEvent?(kind: CacheEventKind, fields: CacheEventFields): void;
  /** A state change of the cache's or the database's circuit breaker. */
  onBreaker?(dependency: GuardedDependency, from: BreakerState, to: BreakerState): void;
}

/** The default: told everything, does nothing. */
export const NO_OBSERVER: StoreObserver = Object.freeze({});
