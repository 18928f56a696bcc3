import { randomBytes } from "node:crypto";
import { test } from "vitest";
import { createCache, type Cache } from "@/lib/cache";
import { openDatabase, type Database } from "@/lib/db/client";
import { user } from "@/lib/db/schema";
import type { LiveBus } from "@/lib/live/bus";
import type { CacheDriverChoice } from "@/lib/names";
import { TaskStore, type StoreObserver, type StoreTestHooks } from "@/lib/taskStore";
import { startUpstashBridge } from "./upstashBridge";
import { createTestDatabase, deleteKeysWithPrefix, TEST_REDIS_URL, uniqueName } from "./services";

export type TestBackend = {
  name: string;
  database: "postgres" | "pglite";
  cacheDriver: CacheDriverChoice;
};

/** The two stacks every integration suite runs on: production-like, and the zero-setup default. */
export const BACKENDS: TestBackend[] = [
  { name: "postgres + redis", database: "postgres", cacheDriver: "redis" },
  { name: "pglite + memory", database: "pglite", cacheDriver: "memory" },
  { name: "postgres + upstash (REST bridge to Redis)", database: "postgres", cacheDriver: "upstash" },
];

export type CacheOptions = {
  redisUrl?: string;
  /** A Redis Cluster instead of `redisUrl` (tests/support/redisCluster.ts), and what its writes wait for. */
  redisClusterNodes?: Array<{ host: string; port: number }>;
  redisClusterWait?: { replicas: number; timeoutMs: number };
  upstash?: { url: string; token: string };
  timeoutMs?: number;
  breakerFailures?: number;
  breakerCooldownMs?: number;
  ttlSeconds?: number;
};

let activeBridge: { url: string; token: string } | undefined;

export function makeCache(driver: CacheDriverChoice, prefix: string, options: CacheOptions = {}): Cache | null {
  if (driver === "none") return null;
  return createCache({
    driver,
    redisUrl: options.redisUrl ?? TEST_REDIS_URL,
    redisClusterNodes: options.redisClusterNodes,
    redisClusterWait: options.redisClusterWait,
    // Without explicit credentials, the REST bridge of the current upstash test env.
    upstash: options.upstash ?? (activeBridge ? { url: activeBridge.url, token: activeBridge.token } : undefined),
    prefix,
    ttlSeconds: options.ttlSeconds ?? 3600,
    timeoutMs: options.timeoutMs ?? 1000,
    breakerFailures: options.breakerFailures ?? 5,
    breakerCooldownMs: options.breakerCooldownMs ?? 1000,
    memoryMaxEntries: 100_000,
  });
}

/**
 * A test environment: its own database (a fresh Postgres database, or an in-memory PGlite) and its
 * own cache key prefix. `openStore()` may be called several times to get independent store
 * instances over the same database and Redis, as separate app servers would be.
 */
export type TestEnv = {
  backend: TestBackend;
  prefix: string;
  databaseUrl?: string;
  /** An account made with the env, for tests that need one owner. */
  userId: string;
  /** Makes another account (a row in users, as sign-up makes) and returns its id. */
  createUser(label?: string): Promise<string>;
  openStore(options?: {
    hooks?: StoreTestHooks;
    /** Told what the store does (lib/store/observer.ts); none by default. */
    observer?: StoreObserver;
    cache?: CacheOptions;
    cacheDriver?: CacheDriverChoice;
    repairIntervalMs?: number;
    /** Where the store publishes live updates (none by default). */
    live?: LiveBus | null;
    /** Reach Postgres at this URL instead (e.g. through a proxy the test controls). */
    databaseUrl?: string;
    /** Deadlines and breaker of the Postgres pool (lib/db/guard.ts). */
    database?: { timeoutMs?: number; statementTimeoutMs?: number; breakerFailures?: number; breakerCooldownMs?: number; poolMax?: number };
  }): Promise<TaskStore>;
  cleanup(): Promise<void>;
};

export async function createTestEnv(backend: TestBackend): Promise<TestEnv> {
  const prefix = uniqueName("wtt");
  const stores: TaskStore[] = [];
  let drop: (() => Promise<void>) | undefined;
  let databaseUrl: string | undefined;
  let sharedPglite: Awaited<ReturnType<typeof openDatabase>> | undefined;
  let sharedMemoryCache: Cache | null | undefined;
  const bridge = backend.cacheDriver === "upstash" ? await startUpstashBridge(TEST_REDIS_URL) : undefined;
  if (bridge) activeBridge = bridge;

  let admin: Database;
  if (backend.database === "postgres") {
    const db = await createTestDatabase();
    databaseUrl = db.url;
    drop = db.drop;
    admin = await openDatabase({ kind: "postgres", url: db.url, poolMax: 2, prepare: true, timeoutMs: 5000 });
    await admin.migrate();
  } else {
    sharedPglite = await openDatabase({ kind: "pglite", dir: ":memory:" });
    await sharedPglite.migrate();
    admin = { ...sharedPglite, close: async () => {} };
  }
  const createUser = async (label = "user") => {
    const id = randomBytes(12).toString("hex");
    await admin.db.insert(user).values({ id, name: label, email: `${label}-${id}@example.test` });
    return id;
  };
  const userId = await createUser("owner");

  return {
    backend,
    prefix,
    databaseUrl,
    userId,
    createUser,
    async openStore(options = {}) {
      const driver = options.cacheDriver ?? backend.cacheDriver;
      let database;
      let cache: Cache | null;
      if (backend.database === "postgres") {
        database = await openDatabase({
          kind: "postgres",
          url: options.databaseUrl ?? (databaseUrl as string),
          poolMax: options.database?.poolMax ?? 10,
          prepare: true,
          timeoutMs: options.database?.timeoutMs ?? 2000,
          statementTimeoutMs: options.database?.statementTimeoutMs,
          breakerFailures: options.database?.breakerFailures,
          breakerCooldownMs: options.database?.breakerCooldownMs,
        });
      } else {
        // PGlite is one in-process database: every store shares it (closing is done in cleanup).
        const db = sharedPglite as NonNullable<typeof sharedPglite>;
        database = { ...db, close: async () => {} };
      }
      if (driver === "memory" && !options.cache) {
        // The memory driver lives in one process; stores of one env share it as they would share Redis.
        sharedMemoryCache ??= makeCache("memory", prefix);
        const shared = sharedMemoryCache as Cache;
        cache = { ...shared, close: async () => {} };
        Object.defineProperty(cache, "breakerState", { get: () => shared.breakerState });
      } else if (driver === "upstash" && bridge) {
        cache = makeCache(driver, prefix, { upstash: { url: bridge.url, token: bridge.token }, ...options.cache });
      } else {
        cache = makeCache(driver, prefix, options.cache);
      }
      const store = new TaskStore({ database, cache, hooks: options.hooks, observer: options.observer, repairIntervalMs: options.repairIntervalMs, live: options.live });
      stores.push(store);
      return store;
    },
    async cleanup() {
      await Promise.allSettled(stores.map((s) => s.close()));
      await admin.close();
      await sharedMemoryCache?.close();
      await sharedPglite?.close();
      await bridge?.close();
      if (backend.cacheDriver === "redis" || backend.cacheDriver === "upstash") await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
      await drop?.();
    },
  };
}

/**
 * `test` where a case applies to this backend, and nothing at all where it doesn't: a case that
 * can't apply is not registered, rather than reported as skipped (a skipped test fails the run).
 */
export function testWhere(applies: boolean): (name: string, fn: () => Promise<void>, timeout?: number) => void {
  return applies ? (name, fn, timeout) => test(name, fn, timeout) : () => undefined;
}
