import "server-only";
import { env, resolveCacheDriver, upstashCredentials } from "./env";
import { createCache } from "./cache";
import { createMemoryBus, type LiveBus } from "./live/bus";
import { createRedisBus } from "./live/redisBus";
import { openDatabase, type DatabaseConfig } from "./db/client";
import { toTaskError } from "./db/errors";
import { log } from "./log";
import { metrics } from "./metrics";
import { TaskError } from "./tasks/errors";
import { TaskStore } from "./store/taskStore";

// The process-wide store, wired from the environment. The store itself lives in lib/store/:
//   taskStore.ts  what every user's store shares (database, cache, flights, epochs, ledger)
//   userTasks.ts  THE write-through protocol, scoped to one user: read it top to bottom
//   repairs.ts    the repair ledger (in process and in the cache_repairs table)
//   views.ts      the audits and the cache lab's side-by-side view
//   observer.ts   what a store reports (queries, cache calls and events, breakers): lib/metrics.ts listens

export { TaskStore, type HealthReport, type StoreTestHooks, type TaskStoreDeps } from "./store/taskStore";
export { NO_OBSERVER, type GuardedDependency, type StoreObserver } from "./store/observer";
export { UserTaskStore, type CacheOutcome, type TaskPage, type WriteCommand, type WriteOutcome } from "./store/userTasks";
export type { AuditFinding, CacheAuditReport, TaskCacheView } from "./store/views";

export function databaseConfigFromEnv(): DatabaseConfig {
  return env.DATABASE_URL
    ? {
        kind: "postgres",
        url: env.DATABASE_URL,
        poolMax: env.DATABASE_POOL_MAX,
        prepare: env.DATABASE_PREPARE,
        timeoutMs: env.DATABASE_TIMEOUT_MS,
        statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
        connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
        breakerFailures: env.DATABASE_BREAKER_FAILURES,
        breakerCooldownMs: env.DATABASE_BREAKER_COOLDOWN_MS,
      }
    : { kind: "pglite", dir: env.PGLITE_DIR };
}

export async function createTaskStoreFromEnv(): Promise<TaskStore> {
  const database = await openDatabase(databaseConfigFromEnv());
  try {
    await database.migrate();
  } catch (err) {
    await database.close();
    throw err;
  }
  const driver = resolveCacheDriver(env);
  const cache = createCache(
    driver === "none"
      ? { driver }
      : {
          driver,
          redisUrl: env.REDIS_URL,
          redisClusterNodes: env.REDIS_CLUSTER_NODES,
          redisClusterWait: { replicas: env.REDIS_CLUSTER_WAIT_REPLICAS, timeoutMs: env.REDIS_CLUSTER_WAIT_MS },
          upstash: upstashCredentials(env),
          prefix: env.CACHE_PREFIX,
          ttlSeconds: env.CACHE_TTL_SECONDS,
          timeoutMs: env.CACHE_TIMEOUT_MS,
          breakerFailures: env.CACHE_BREAKER_FAILURES,
          breakerCooldownMs: env.CACHE_BREAKER_COOLDOWN_MS,
          memoryMaxEntries: env.CACHE_MEMORY_MAX_ENTRIES,
        },
  );
  log.info("task store ready", { database: database.kind, cache: driver });
  return new TaskStore({ database, cache, live: liveBusFor(driver), repairIntervalMs: env.CACHE_REPAIR_INTERVAL_MS, observer: metrics().observer });
}

/**
 * Where committed changes are published for live updates: the cache's Redis (pub/sub; sharded on a
 * cluster), an in-process emitter with the memory driver (one instance), none on Upstash (its REST
 * API keeps no subscriptions: the page polls instead) or without a cache (CACHE_DRIVER=none: one
 * instance, so an emitter would do, but there is no cache to go live with: polling too).
 */
function liveBusFor(driver: ReturnType<typeof resolveCacheDriver>): LiveBus | null {
  if (driver === "memory") return createMemoryBus();
  if (driver === "redis") {
    return createRedisBus({ prefix: env.CACHE_PREFIX, url: env.REDIS_URL, clusterNodes: env.REDIS_CLUSTER_NODES, publishTimeoutMs: Math.max(env.CACHE_TIMEOUT_MS, 250) });
  }
  return null;
}

// One store per process, kept on globalThis so dev-server reloads don't open a new pool each time.
const holder = globalThis as unknown as { __taskStore?: Promise<TaskStore> };

/** The process-wide store, opened (and migrated) on first use; a failed open is retried next call. */
export function getTaskStore(): Promise<TaskStore> {
  if (!holder.__taskStore) {
    holder.__taskStore = createTaskStoreFromEnv().catch((err: unknown) => {
      holder.__taskStore = undefined;
      const taskError = toTaskError(err);
      log.error("task store failed to open", { err });
      throw taskError.code === "internal_error"
        ? new TaskError("service_unavailable", "The database is unavailable. Try again shortly.", { cause: err, retryAfterSeconds: 1 })
        : taskError;
    });
  }
  return holder.__taskStore;
}
