import { env, resolveCacheDriver } from "./env";
import { createCache, MAX_CACHE_WRITE_AGE_MS, type Cache } from "./cache";
import type { CachedTask, TaskCacheDriver } from "./cache/types";
import { openDatabase, type Database, type DatabaseConfig } from "./db/client";
import { toTaskError } from "./db/errors";
import { log } from "./log";
import { SingleFlight } from "./singleFlight";
import { isTaskError, TaskError } from "./tasks/errors";
import * as queries from "./tasks/queries";
import { PG_INT_MAX, type CreateTaskInput, type Task, type TaskPatch } from "./tasks/schema";

/** How a read was served: from the cache, filled from Postgres into the cache, or Postgres alone. */
export type CacheOutcome = "HIT" | "MISS" | "BYPASS";

export type TaskPage = { tasks: Task[]; nextCursor: string | null; cache: CacheOutcome };

/**
 * Points where tests can pause the store to force an interleaving (tests/consistency). Production
 * code never sets them; each is awaited only when present.
 */
export type StoreTestHooks = {
  /** After a miss read Postgres, before the fill is written to the cache. */
  beforeFill?: (taskIds: number[]) => Promise<void>;
  /** After a write committed in Postgres, before its cache write. */
  beforeWriteThrough?: (taskId: number) => Promise<void>;
  /** After a list-index build read the ids from Postgres, before it is published. */
  beforeIndexPublish?: () => Promise<void>;
};

export type AuditFinding = {
  id: number;
  kind: "stale" | "ghost" | "missingFromList";
  cached: string;
  postgres: string;
};

/** What `npm run cache:audit` and GET /api/cache/audit report: the cache compared with Postgres. */
export type CacheAuditReport = {
  driver: "redis" | "memory" | "none";
  /** Cached task entries compared (live entries and tombstones). */
  checked: number;
  /** Entries at another version or with other content than Postgres, or tombstones of live tasks. */
  stale: number;
  /** Cached tasks, or list-index ids, that Postgres no longer has. */
  ghosts: number;
  /** Tasks Postgres has that a complete list index lacks. */
  missingFromList: number;
  /** Whether a complete list index was there to compare. */
  listIndexed: boolean;
  ok: boolean;
  /** Up to 20 examples. */
  findings: AuditFinding[];
};

export type TaskStoreDeps = {
  database: Database;
  cache: Cache | null;
  hooks?: StoreTestHooks;
  now?: () => number;
};

const INDEX_LEASE_MS = 30_000;
const INDEX_BUILD_CHUNK = 2_000;

/**
 * THE write-through store: route handlers and server actions call only this. Postgres is written
 * first; the cache write follows in the same request and is a compare-and-set on the version, so
 * it can never move an entry backwards. Reads go through the cache and fall back to Postgres.
 * See docs/decisions/002-cache-consistency-protocol.md.
 */
export class TaskStore {
  readonly database: Database;
  readonly cache: Cache | null;
  private readonly hooks: StoreTestHooks;
  private readonly now: () => number;
  private readonly flights = new SingleFlight();
  /** Ids whose cache write failed, with a counter so a repair can't erase a newer failure. */
  private readonly pendingRepairs = new Map<number, number>();
  private indexDirty = false;
  private repairSeq = 0;

  constructor(deps: TaskStoreDeps) {
    this.database = deps.database;
    this.cache = deps.cache;
    this.hooks = deps.hooks ?? {};
    this.now = deps.now ?? Date.now;
  }

  get cacheDriverName(): "redis" | "memory" | "none" {
    return this.cache?.driver.name ?? "none";
  }

  // ---- reads -------------------------------------------------------------------------------

  async get(id: number): Promise<{ task: Task; cache: CacheOutcome }> {
    const cache = await this.usableCache();
    if (cache) {
      try {
        const entry = await cache.run("getTask", (d) => d.getTask(id));
        if (entry.state === "hit") return { task: entry.task, cache: "HIT" };
        if (entry.state === "tombstone") throw notFound(id);
        const task = await this.flights.do(`task:${id}`, () => this.fillOne(cache, id));
        if (!task) throw notFound(id);
        return { task, cache: "MISS" };
      } catch (err) {
        if (isTaskError(err)) throw err;
        // Cache failure: the breaker has counted it; answer from Postgres.
      }
    }
    const task = await this.db(() => queries.getTaskById(this.database.db, { id }));
    if (!task) throw notFound(id);
    return { task, cache: "BYPASS" };
  }

  async list({ limit, cursor }: { limit: number; cursor?: number }): Promise<TaskPage> {
    const cache = await this.usableCache();
    if (cache) {
      try {
        const ids = await cache.run("getIndexPage", (d) => d.getIndexPage({ beforeId: cursor, limit: limit + 1 }));
        if (ids) return await this.pageFromIndex(cache, ids, limit);
        const [page] = await Promise.all([
          this.flights.do(`list:${cursor ?? ""}:${limit}`, () => this.fillPage(cache, { limit, cursor })),
          this.ensureIndex(cache),
        ]);
        return { ...page, cache: "MISS" };
      } catch (err) {
        if (isTaskError(err)) throw err;
      }
    }
    const rows = await this.db(() => queries.listTasks(this.database.db, { beforeId: cursor, limit: limit + 1 }));
    return { ...toPage(rows, limit), cache: "BYPASS" };
  }

  // ---- writes ------------------------------------------------------------------------------

  async create(input: CreateTaskInput): Promise<Task> {
    const startedAt = this.now();
    const task = await this.db(() => queries.insertTask(this.database.db, { title: input.title, done: input.done ?? false }));
    await this.writeThrough("putCreated", task.id, startedAt, true, (d) => d.putCreated(task));
    return task;
  }

  async update({ id, patch, expectedVersion }: { id: number; patch: TaskPatch; expectedVersion?: number }): Promise<Task> {
    const startedAt = this.now();
    const task = await this.db(() => queries.updateTask(this.database.db, { id, patch, expectedVersion }));
    if (!task) throw await this.missingOrConflict(id);
    await this.writeThrough("putTask", id, startedAt, false, (d) => d.putTask(task));
    return task;
  }

  async remove({ id, expectedVersion }: { id: number; expectedVersion?: number }): Promise<void> {
    const startedAt = this.now();
    const deleted = await this.db(() => queries.deleteTask(this.database.db, { id, expectedVersion }));
    if (!deleted) throw await this.missingOrConflict(id);
    // The delete is the state after the row's last version, so its tombstone outranks that version:
    // a late fill or write-through carrying it is refused.
    const tombstoneVersion = deleted.version + 1;
    await this.writeThrough("putTombstone", id, startedAt, true, (d) => d.putTombstone(id, tombstoneVersion));
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.cache?.close(), this.database.close()]);
  }

  /**
   * Compares every cached entry and the cached list index with Postgres. Exact when writes have
   * stopped; under writes, each disagreement is re-read once so an in-flight write isn't reported.
   */
  async audit(): Promise<CacheAuditReport> {
    const report: CacheAuditReport = {
      driver: this.cacheDriverName,
      checked: 0,
      stale: 0,
      ghosts: 0,
      missingFromList: 0,
      listIndexed: false,
      ok: true,
      findings: [],
    };
    const driver = this.cache?.driver;
    if (!driver) return report;
    const db = this.database.db;
    const describe = (entry: CachedTask) =>
      entry.state === "hit" ? `v${entry.task.version}` : entry.state === "tombstone" ? `tombstone v${entry.version}` : "absent";
    const judge = (entry: CachedTask, row: Task | undefined): AuditFinding["kind"] | null => {
      if (entry.state === "hit") {
        if (!row) return "ghost";
        return JSON.stringify(entry.task) === JSON.stringify(row) ? null : "stale";
      }
      if (entry.state === "tombstone" && row) return "stale";
      return null;
    };
    const record = (kind: AuditFinding["kind"], id: number, cached: string, postgres: string) => {
      if (kind === "stale") report.stale++;
      else if (kind === "ghost") report.ghosts++;
      else report.missingFromList++;
      if (report.findings.length < 20) report.findings.push({ id, kind, cached, postgres });
    };

    const suspects: number[] = [];
    for await (const batch of driver.scanEntries(500)) {
      report.checked += batch.length;
      const rows = new Map((await this.db(() => queries.getTasksByIds(db, { ids: batch.map((b) => b.id) }))).map((t) => [t.id, t]));
      for (const { id, entry } of batch) if (judge(entry, rows.get(id))) suspects.push(id);
    }
    for (const id of suspects) {
      const [entry, row] = await Promise.all([driver.getTask(id), this.db(() => queries.getTaskById(db, { id }))]);
      const kind = judge(entry, row);
      if (kind) record(kind, id, describe(entry), row ? `v${row.version}` : "absent");
    }

    const indexed = await driver.readWholeIndex();
    if (indexed) {
      report.listIndexed = true;
      const inPostgres = new Set(await this.db(() => queries.listAllTaskIds(db)));
      const inIndex = new Set(indexed);
      for (const id of indexed) if (!inPostgres.has(id)) record("ghost", id, "in list", "absent");
      for (const id of inPostgres) if (!inIndex.has(id)) record("missingFromList", id, "not in list", "present");
    }
    report.ok = report.stale === 0 && report.ghosts === 0 && report.missingFromList === 0;
    return report;
  }

  // ---- internals ---------------------------------------------------------------------------

  private async fillOne(cache: Cache, id: number): Promise<Task | undefined> {
    const startedAt = this.now();
    const task = await this.db(() => queries.getTaskById(this.database.db, { id }));
    // An absent id gets no tombstone: it may simply not exist *yet*, and a tombstone would refuse its create.
    if (task) await this.fill(cache, [task], startedAt);
    return task;
  }

  private async fillPage(cache: Cache, { limit, cursor }: { limit: number; cursor?: number }) {
    const startedAt = this.now();
    const rows = await this.db(() => queries.listTasks(this.database.db, { beforeId: cursor, limit: limit + 1 }));
    const page = toPage(rows, limit);
    await this.fill(cache, page.tasks, startedAt);
    return page;
  }

  private async pageFromIndex(cache: Cache, ids: number[], limit: number): Promise<TaskPage> {
    const pageIds = ids.slice(0, limit);
    const nextCursor = ids.length > limit ? String(pageIds[pageIds.length - 1]) : null;
    const entries = pageIds.length > 0 ? await cache.run("getTasks", (d) => d.getTasks(pageIds)) : [];
    const found = new Map<number, Task>();
    const missing: number[] = [];
    entries.forEach((entry, i) => {
      const id = pageIds[i] as number;
      if (entry.state === "hit") found.set(id, entry.task);
      else if (entry.state === "miss") missing.push(id);
      // A tombstone means deleted: the id is leaving the index, leave it out of the page.
    });
    if (missing.length > 0) {
      const startedAt = this.now();
      const rows = await this.db(() => queries.getTasksByIds(this.database.db, { ids: missing }));
      for (const task of rows) found.set(task.id, task);
      await this.fill(cache, rows, startedAt);
    }
    const tasks = pageIds.flatMap((id) => found.get(id) ?? []);
    return { tasks, nextCursor, cache: missing.length > 0 ? "MISS" : "HIT" };
  }

  /** Miss-fill: compare-and-set each task; a fill that read Postgres too long ago is dropped. */
  private async fill(cache: Cache, tasks: Task[], startedAt: number) {
    if (tasks.length === 0) return;
    await this.hooks.beforeFill?.(tasks.map((t) => t.id));
    if (this.now() - startedAt > MAX_CACHE_WRITE_AGE_MS) return;
    await Promise.all(tasks.map((task) => cache.run("putTask", (d) => d.putTask(task)))).catch(() => {
      // A failed fill leaves the entry absent or older-but-refusable: nothing to repair.
    });
  }

  /** Builds the list index when none is complete; errors only cost this request a cache miss. */
  private async ensureIndex(cache: Cache): Promise<void> {
    await this.flights
      .do("index", async () => {
        const start = await cache.run("startIndexBuild", (d) => d.startIndexBuild(INDEX_LEASE_MS));
        if (start.state !== "started") return;
        const ids = await this.db(() => queries.listAllTaskIds(this.database.db));
        await this.hooks.beforeIndexPublish?.();
        for (let i = 0; i < ids.length; i += INDEX_BUILD_CHUNK) {
          const chunk = ids.slice(i, i + INDEX_BUILD_CHUNK);
          if (!(await cache.run("addToIndexBuild", (d) => d.addToIndexBuild(start.token, chunk)))) return;
        }
        await cache.run("publishIndexBuild", (d) => d.publishIndexBuild(start.token));
      })
      .catch((err) => {
        if (isTaskError(err)) throw err;
      });
  }

  private async writeThrough(
    operation: string,
    id: number,
    startedAt: number,
    changesMembership: boolean,
    write: (d: TaskCacheDriver) => Promise<boolean>,
  ): Promise<void> {
    if (!this.cache) return;
    try {
      await this.hooks.beforeWriteThrough?.(id);
      if (this.now() - startedAt > MAX_CACHE_WRITE_AGE_MS) throw new Error("write-through too late to be trusted");
      await this.cache.run(operation, write);
    } catch (err) {
      // Postgres has committed; the cache may now hold an older version. Record the id so it is
      // rewritten from Postgres before this instance trusts the cache again.
      this.pendingRepairs.set(id, ++this.repairSeq);
      if (changesMembership) this.indexDirty = true;
      log.warn("cache write-through failed; repair recorded", { operation, taskId: id, err: String(err) });
    }
  }

  /** The cache, once every recorded repair has been carried out; null means "use Postgres only". */
  private async usableCache(): Promise<Cache | null> {
    if (!this.cache) return null;
    if (this.pendingRepairs.size === 0 && !this.indexDirty) return this.cache;
    try {
      await this.flights.do("repair", () => this.runRepairs(this.cache as Cache));
    } catch {
      return null;
    }
    return this.pendingRepairs.size === 0 && !this.indexDirty ? this.cache : null;
  }

  private async runRepairs(cache: Cache): Promise<void> {
    if (this.indexDirty) {
      this.indexDirty = false;
      try {
        await cache.run("dropIndex", (d) => d.dropIndex());
      } catch (err) {
        this.indexDirty = true;
        throw err;
      }
    }
    for (const [id, seq] of [...this.pendingRepairs]) {
      const task = await this.db(() => queries.getTaskById(this.database.db, { id }));
      // Ids are never reused, so a deleted task can be tombstoned above any version it ever had.
      await cache.run("repair", (d) => (task ? d.putTask(task) : d.putTombstone(id, PG_INT_MAX)));
      if (this.pendingRepairs.get(id) === seq) this.pendingRepairs.delete(id);
    }
    if (this.pendingRepairs.size > 0) log.info("cache repairs remain", { count: this.pendingRepairs.size });
  }

  private async missingOrConflict(id: number): Promise<TaskError> {
    const current = await this.db(() => queries.getTaskById(this.database.db, { id }));
    if (!current) return notFound(id);
    return new TaskError("precondition_failed", `Task ${id} has changed (now at version ${current.version}).`);
  }

  /** Runs a query, turning driver errors into TaskErrors without leaking their text. */
  private async db<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const taskError = toTaskError(err);
      if (taskError.code === "service_unavailable") log.warn("database unavailable", { err });
      else if (taskError.code === "internal_error") log.error("database query failed", { err });
      throw taskError;
    }
  }
}

function notFound(id: number): TaskError {
  return new TaskError("not_found", `Task ${id} does not exist.`);
}

function toPage(rows: Task[], limit: number): Omit<TaskPage, "cache"> {
  const tasks = rows.slice(0, limit);
  const last = tasks[tasks.length - 1];
  return { tasks, nextCursor: rows.length > limit && last ? String(last.id) : null };
}

// ---- the process-wide store -------------------------------------------------------------------

export function databaseConfigFromEnv(): DatabaseConfig {
  return env.DATABASE_URL
    ? {
        kind: "postgres",
        url: env.DATABASE_URL,
        poolMax: env.DATABASE_POOL_MAX,
        prepare: env.DATABASE_PREPARE,
        timeoutMs: env.DATABASE_TIMEOUT_MS,
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
          prefix: env.CACHE_PREFIX,
          ttlSeconds: env.CACHE_TTL_SECONDS,
          timeoutMs: env.CACHE_TIMEOUT_MS,
          breakerFailures: env.CACHE_BREAKER_FAILURES,
          breakerCooldownMs: env.CACHE_BREAKER_COOLDOWN_MS,
          memoryMaxEntries: env.CACHE_MEMORY_MAX_ENTRIES,
        },
  );
  log.info("task store ready", { database: database.kind, cache: driver });
  return new TaskStore({ database, cache });
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
        ? new TaskError("service_unavailable", "The database is unavailable. Try again shortly.", { cause: err })
        : taskError;
    });
  }
  return holder.__taskStore;
}
