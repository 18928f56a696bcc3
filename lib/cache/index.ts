import { CircuitBreaker, type BreakerState } from "./breaker";
import { createMemoryDriver } from "./memory";
import { createRedisDriver } from "./redis";
import type { TaskCacheDriver } from "./types";

export type CacheConfig =
  | { driver: "none" }
  | {
      driver: "redis" | "memory";
      redisUrl?: string;
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
  run<T>(operation: string, fn: (driver: TaskCacheDriver) => Promise<T>): Promise<T>;
  readonly breakerState: BreakerState;
  close(): Promise<void>;
};

// A tombstone must outlive any write that could still arrive for the deleted task. The store drops
// cache writes older than MAX_CACHE_WRITE_AGE_MS, so this floor leaves a wide margin.
export const MAX_CACHE_WRITE_AGE_MS = 10_000;
const TOMBSTONE_TTL_FLOOR_SECONDS = 300;

export function wrapDriver(
  driver: TaskCacheDriver,
  options: { timeoutMs: number; breakerFailures: number; breakerCooldownMs: number },
): Cache {
  const breaker = new CircuitBreaker({
    failureThreshold: options.breakerFailures,
    cooldownMs: options.breakerCooldownMs,
    timeoutMs: options.timeoutMs,
  });
  return {
    driver,
    breaker,
    run: (operation, fn) => breaker.run(operation, () => fn(driver)),
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
  } else {
    driver = createMemoryDriver({ ...ttls, maxEntries: config.memoryMaxEntries });
  }
  return wrapDriver(driver, config);
}
