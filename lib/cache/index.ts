import { CircuitBreaker, type BreakerState } from "./breaker";
import { cacheKeys } from "./keys";
import { createMemoryDriver } from "./memory";
import { createRedisDriver } from "./redis";
import { createUpstashDriver } from "./upstash";
import { CacheUnavailableError, type TaskCacheDriver } from "./types";

export type CacheConfig =
  | { driver: "none" }
  | {
      driver: "redis" | "upstash" | "memory";
      redisUrl?: string;
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
  readonly driver: TaskCacheDriver;
  readonly breaker: CircuitBreaker;
  /** Runs one cache call under the timeout and breaker; `taskId` names the key in fault logs. */
  run<T>(operation: string, fn: (driver: TaskCacheDriver) => Promise<T>, taskId?: number): Promise<T>;
  readonly breakerState: BreakerState;
  close(): Promise<void>;
};

// A tombstone must outlive any write that could still arrive for the deleted task. The store drops
// cache writes older than MAX_CACHE_WRITE_AGE_MS, so this floor leaves a wide margin.
export const MAX_CACHE_WRITE_AGE_MS = 10_000;
const TOMBSTONE_TTL_FLOOR_SECONDS = 300;

/** Told about every cache call: for metrics. `outcome` "rejected" means refused by the open breaker. */
export type CacheCallObserver = (operation: string, outcome: "ok" | "error" | "rejected", seconds: number) => void;

const observers = new Set<CacheCallObserver>();
/** Subscribes to every cache call of every cache in this process (lib/metrics uses it). */
export function observeCacheCalls(observer: CacheCallObserver): () => void {
  observers.add(observer);
  return () => observers.delete(observer);
}

export function wrapDriver(
  driver: TaskCacheDriver,
  options: { timeoutMs: number; breakerFailures: number; breakerCooldownMs: number; prefix?: string },
): Cache {
  const keys = options.prefix ? cacheKeys(options.prefix) : undefined;
  const keyOf = (taskId?: number) => (taskId === undefined ? undefined : (keys?.task(taskId) ?? `task:${taskId}`));
  const breaker = new CircuitBreaker({
    failureThreshold: options.breakerFailures,
    cooldownMs: options.breakerCooldownMs,
    timeoutMs: options.timeoutMs,
  });
  return {
    driver,
    breaker,
    async run(operation, fn, taskId) {
      if (observers.size === 0) return breaker.run(operation, () => fn(driver), keyOf(taskId));
      const started = performance.now();
      let outcome: "ok" | "error" | "rejected" = "ok";
      try {
        return await breaker.run(operation, () => fn(driver), keyOf(taskId));
      } catch (err) {
        outcome = err instanceof CacheUnavailableError && /breaker open/.test(err.message) ? "rejected" : "error";
        throw err;
      } finally {
        const seconds = (performance.now() - started) / 1000;
        for (const o of observers) o(operation, outcome, seconds);
      }
    },
    get breakerState() {
      return breaker.currentState;
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
  let driver: TaskCacheDriver;
  if (config.driver === "redis") {
    if (!config.redisUrl) throw new Error("the redis cache driver needs REDIS_URL");
    driver = createRedisDriver({ ...ttls, url: config.redisUrl, prefix: config.prefix, commandTimeoutMs: config.timeoutMs });
  } else if (config.driver === "upstash") {
    if (!config.upstash) throw new Error("the upstash cache driver needs UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN");
    driver = createUpstashDriver({ ...ttls, ...config.upstash, prefix: config.prefix, commandTimeoutMs: config.timeoutMs });
  } else {
    driver = createMemoryDriver({ ...ttls, maxEntries: config.memoryMaxEntries });
  }
  return wrapDriver(driver, config);
}
