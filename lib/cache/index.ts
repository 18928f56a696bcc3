import "server-only";
import { CircuitBreaker } from "../breaker";
import type { BreakerState, CacheDriverName } from "../names";
import { createMemoryDriver } from "./memory";
import { createRedisClusterDriver, createRedisDriver } from "./redis";
import { createUpstashDriver } from "./upstash";
import { CacheUnavailableError, type CacheDriver } from "./types";

export type CacheConfig =
  | { driver: "none" }
  | {
      driver: CacheDriverName;
      redisUrl?: string;
      /** Seed nodes of a Redis Cluster: the redis driver runs on the cluster instead of one Redis. */
      redisClusterNodes?: Array<{ host: string; port: number }>;
      /** On a cluster: replicas that must confirm a write (WAIT) before it counts as written (0: none), and how long it waits (ADR 014). */
      redisClusterWait?: { replicas: number; timeoutMs: number };
      upstash?: { url: string; token: string };
      prefix: string;
      ttlSeconds: number;
      timeoutMs: number;
      breakerFailures: number;
      breakerCooldownMs: number;
      memoryMaxEntries: number;
    };

/** A driver behind the timeout + circuit breaker: the only way the store talks to a cache. */
export type Cache = {
  readonly driver: CacheDriver;
  readonly breaker: CircuitBreaker;
  /** Runs one cache call under the timeout and breaker; `subject` names the key in fault logs. */
  run<T>(operation: CacheOperation, fn: () => Promise<T>, subject?: string): Promise<T>;
  readonly breakerState: BreakerState;
  /** Calls `listener` after every call made through `run`; returns a function that unsubscribes (the store forwards them to its observer). */
  onCall(listener: CacheCallListener): () => void;
  close(): Promise<void>;
};

/** Every kind of cache call the app makes: metric labels and fault logs use these names. */
export type CacheOperation =
  | "getTask"
  | "getTasks"
  | "epoch"
  | "putTask"
  | "putTombstone"
  | "writeTasks"
  | "putMissing"
  | "getViewPage"
  | "startIndexBuild"
  | "addToIndexBuild"
  | "publishIndexBuild"
  | "abandonIndexBuild"
  | "dropIndex"
  | "evictTask"
  | "flushUser"
  | "scratch"
  | "repair"
  | "ttls"
  | "ping"
  | "audit"
  | "authGet"
  | "authSet"
  | "authDelete";

// A tombstone must outlive any write that could still arrive for the deleted task. The store drops
// cache writes older than MAX_CACHE_WRITE_AGE_MS, so this floor leaves a wide margin.
export const MAX_CACHE_WRITE_AGE_MS = 10_000;
const TOMBSTONE_TTL_FLOOR_SECONDS = 300;
/**
 * How long a revoked auth value (session, API key) keeps its marker. A fill that read Postgres
 * before the revocation is dropped once it is MAX_CACHE_WRITE_AGE_MS old, so this is a wide margin.
 */
export const REVOCATION_TTL_SECONDS = 300;

/** How a cache call ended; "rejected": refused at once by the open breaker, without reaching the cache. */
export type CacheCallOutcome = "ok" | "error" | "rejected";

export type CacheCallListener = (operation: CacheOperation, outcome: CacheCallOutcome, seconds: number) => void;

export function wrapDriver(driver: CacheDriver, options: { timeoutMs: number; breakerFailures: number; breakerCooldownMs: number }): Cache {
  const breaker = new CircuitBreaker({
    name: "cache",
    rejection: (reason, message) => new CacheUnavailableError(message, reason),
    failureThreshold: options.breakerFailures,
    cooldownMs: options.breakerCooldownMs,
    timeoutMs: options.timeoutMs,
    // On a cluster: a call the cache answered but that can't count as done (a write its replicas
    // didn't confirm, a slot that moved or is moving), or one refused at once because its master
    // is known to be down. The cache as a whole is up: the caller reads Postgres or owes a repair,
    // and the breaker, which stands for the whole cache, doesn't count it.
    isFailure: (err) => !(err instanceof CacheUnavailableError && (err.reason === "unconfirmed" || err.reason === "node-down")),
  });
  const listeners = new Set<CacheCallListener>();
  return {
    driver,
    breaker,
    async run(operation, fn, subject) {
      if (listeners.size === 0) return breaker.run(operation, fn, subject);
      const started = performance.now();
      let outcome: CacheCallOutcome = "ok";
      try {
        return await breaker.run(operation, fn, subject);
      } catch (err) {
        outcome = err instanceof CacheUnavailableError && err.reason === "breaker-open" ? "rejected" : "error";
        throw err;
      } finally {
        const seconds = (performance.now() - started) / 1000;
        for (const l of listeners) l(operation, outcome, seconds);
      }
    },
    get breakerState() {
      return breaker.currentState;
    },
    onCall(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => driver.close(),
  };
}

export function createCache(config: CacheConfig): Cache | null {
  if (config.driver === "none") return null;
  const ttls = {
    ttlSeconds: config.ttlSeconds,
    tombstoneTtlSeconds: Math.max(config.ttlSeconds, TOMBSTONE_TTL_FLOOR_SECONDS),
  };
  let driver: CacheDriver;
  if (config.driver === "redis" && config.redisClusterNodes) {
    driver = createRedisClusterDriver({
      ...ttls,
      nodes: config.redisClusterNodes,
      prefix: config.prefix,
      commandTimeoutMs: config.timeoutMs,
      waitReplicas: config.redisClusterWait?.replicas,
      waitTimeoutMs: config.redisClusterWait?.timeoutMs,
    });
  } else if (config.driver === "redis") {
    if (!config.redisUrl) throw new Error("the redis cache driver needs REDIS_URL or REDIS_CLUSTER_NODES");
    driver = createRedisDriver({ ...ttls, url: config.redisUrl, prefix: config.prefix, commandTimeoutMs: config.timeoutMs });
  } else if (config.driver === "upstash") {
    if (!config.upstash) throw new Error("the upstash cache driver needs UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN");
    driver = createUpstashDriver({ ...ttls, ...config.upstash, prefix: config.prefix, commandTimeoutMs: config.timeoutMs });
  } else {
    driver = createMemoryDriver({ ...ttls, maxEntries: config.memoryMaxEntries });
  }
  return wrapDriver(driver, config);
}
