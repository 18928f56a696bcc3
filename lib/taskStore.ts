import { env, resolveCacheDriver, upstashCredentials } from "./env";
import { createCache, MAX_CACHE_WRITE_AGE_MS, type Cache } from "./cache";
import type { CachedTask, PutResult, TaskCacheDriver } from "./cache/types";
import { openDatabase, type Database, type DatabaseConfig } from "./db/client";
import { toTaskError } from "./db/errors";
import { log } from "./log";
import { CacheEventLog } from "./cacheEvents";
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
  driver: "redis" | "upstash" | "memory" | "none";
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

/** One task as the cache lab shows it: Postgres and the cache side by side. */
export type TaskCacheView = {
  id: number;
  postgres: { version: number; title: string; done: boolean } | null;
  cache: { state: "hit"; version: number; title: string; done: boolean } | { state: "tombstone"; version: number } | { state: "miss" };
  ttlSeconds: number | null;
  /** fresh: cache = Postgres; stale: cache older or different; ghost: cached but gone from Postgres; unknown: the cache could not be read. */
  status: "fresh" | "stale" | "absent" | "tombstone" | "ghost" | "unknown";
};

export type HealthReport = {
  /** ok; degraded: the cache is down or its breaker open (the app still works); down: Postgres is unreachable. */
  status: "ok" | "degraded" | "down";
  db: { ok: boolean; latencyMs: number | null };
  cache: { driver: "redis" | "upstash" | "memory" | "none"; ok: boolean; latencyMs: number | null; breaker: string | null };
};

export type TaskStoreDeps = {
  database: Database;
  cache: Cache | null;
  hooks?: StoreTestHooks;
  now?: () => number;
  /** Run a repair pass this often (ms); 0 or absent: only when a read finds repairs owed. */
  repairIntervalMs?: number;
};

const INDEX_LEASE_MS = 30_000;
const INDEX_BUILD_CHUNK = 2_000;
const REPAIR_BATCH = 500;
/** Rows filled along with a cold index build: the first page of any sensible size. */
const INDEX_PREFILL = 200;
/** How long an instance waits for another instance's index build before reading Postgres. */
const INDEX_WAIT_MS = 1_000;
const INDEX_POLL_MS = 25;

type FillResult = PutResult | "skipped" | "failed";

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
  private knownEpoch: string | null = null;
  private repairTimer: ReturnType<typeof setInterval> | undefined;
  /** Counters for tests and metrics: Postgres statements issued, compare-and-set refusals, repairs done. */
  readonly stats = { dbQueries: 0, casRefusals: 0, repairs: 0 };
  /** The last cache events and counters per kind, for the cache lab page and metrics. */
  readonly events = new CacheEventLog();

  constructor(deps: TaskStoreDeps) {
    this.database = deps.database;
    this.cache = deps.cache;
    this.hooks = deps.hooks ?? {};
    this.now = deps.now ?? Date.now;
    this.cache?.breaker.onTransition((from, to) => this.events.record("breaker", { detail: `${from} → ${to}` }));
    if (this.cache && deps.repairIntervalMs) {
      this.repairTimer = setInterval(() => void this.repairNow().catch(() => undefined), deps.repairIntervalMs);
      this.repairTimer.unref();
    }
  }

  /** Repairs this instance owes (while non-zero it does not read the cache). */
  get pendingRepairCount(): number {
    return this.pendingRepairs.size + (this.indexDirty ? 1 : 0);
  }

  get cacheDriverName(): "redis" | "upstash" | "memory" | "none" {
    return this.cache?.driver.name ?? "none";
  }

  // ---- reads -------------------------------------------------------------------------------

  async get(id: number): Promise<{ task: Task; cache: CacheOutcome }> {
    try {
      const result = await this.readOne(id);
      this.events.record(result.cache === "HIT" ? "hit" : result.cache === "MISS" ? "miss" : "bypass");
      return result;
    } catch (err) {
      if (isTaskError(err) && err.code === "not_found") this.events.record(this.cache ? "hit" : "bypass");
      throw err;
    }
  }

  async list(args: { limit: number; cursor?: number }): Promise<TaskPage> {
    const page = await this.readPage(args);
    this.events.record(page.cache === "HIT" ? "hit" : page.cache === "MISS" ? "miss" : "bypass");
    return page;
  }

  private async readOne(id: number): Promise<{ task: Task; cache: CacheOutcome }> {
    const cache = await this.usableCache();
    if (cache) {
      try {
        const entry = await cache.run("getTask", (d) => d.getTask(id), id);
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

  private async readPage({ limit, cursor }: { limit: number; cursor?: number }): Promise<TaskPage> {
    const cache = await this.usableCache();
    let outcome: CacheOutcome = "BYPASS";
    if (cache) {
      try {
        const page = { beforeId: cursor, limit: limit + 1 };
        let ids = await cache.run("getIndexPage", (d) => d.getIndexPage(page));
        if (ids) return await this.pageFromIndex(cache, ids, limit, "HIT");
        // Cold list: build the index (one build per instance; across instances a lease), then
        // serve from it, so the page reflects every write acknowledged before this read began.
        await this.flights.do("index", () => this.buildIndex(cache));
        ids = await cache.run("getIndexPage", (d) => d.getIndexPage(page));
        if (ids) return await this.pageFromIndex(cache, ids, limit, "MISS");
        outcome = "MISS";
      } catch (err) {
        if (isTaskError(err)) throw err;
      }
    }
    // No cache, a failing one, or another instance's build still running: Postgres answers.
    const rows = await this.db(() => queries.listTasks(this.database.db, { beforeId: cursor, limit: limit + 1 }));
    return { ...toPage(rows, limit), cache: outcome };
  }

  // ---- writes ------------------------------------------------------------------------------

  async create(input: CreateTaskInput): Promise<Task> {
    const epoch = await this.captureEpoch();
    const startedAt = this.now();
    const task = await this.db(() => queries.insertTask(this.database.db, { title: input.title, done: input.done ?? false }));
    await this.writeThrough("putCreated", task.id, task.version, startedAt, true, (d) => d.putCreated(task, epoch ?? ""));
    return task;
  }

  async update({ id, patch, expectedVersion }: { id: number; patch: TaskPatch; expectedVersion?: number }): Promise<Task> {
    const epoch = await this.captureEpoch();
    const startedAt = this.now();
    const task = await this.db(() => queries.updateTask(this.database.db, { id, patch, expectedVersion }));
    if (!task) throw await this.missingOrConflict(id);
    await this.writeThrough("putTask", id, task.version, startedAt, false, (d) => d.putTask(task, epoch ?? ""));
    return task;
  }

  async remove({ id, expectedVersion }: { id: number; expectedVersion?: number }): Promise<void> {
    const epoch = await this.captureEpoch();
    const startedAt = this.now();
    const deleted = await this.db(() => queries.deleteTask(this.database.db, { id, expectedVersion }));
    if (!deleted) throw await this.missingOrConflict(id);
    // The delete is the state after the row's last version, so its tombstone outranks that version:
    // a late fill or write-through carrying it is refused.
    const tombstoneVersion = deleted.version + 1;
    await this.writeThrough("putTombstone", id, tombstoneVersion, startedAt, true, (d) => d.putTombstone(id, tombstoneVersion, epoch ?? ""));
  }

  /** Round trips to Postgres and to the cache, each bounded by `timeoutMs`: for /api/health. */
  async health(timeoutMs: number): Promise<HealthReport> {
    const timed = async (fn: () => Promise<void>) => {
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([fn(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), timeoutMs)))]);
        return { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
      } catch {
        return { ok: false, latencyMs: null };
      } finally {
        clearTimeout(timer);
      }
    };
    const [db, cache] = await Promise.all([
      timed(() => this.database.ping()),
      this.cache ? timed(() => (this.cache as Cache).driver.ping()) : Promise.resolve({ ok: true, latencyMs: null }),
    ]);
    return {
      status: !db.ok ? "down" : cache.ok && this.cache?.breakerState !== "open" ? "ok" : "degraded",
      db,
      cache: { driver: this.cacheDriverName, ...cache, breaker: this.cache?.breakerState ?? null },
    };
  }

  async close(): Promise<void> {
    clearInterval(this.repairTimer);
    await Promise.allSettled([this.cache?.close(), this.database.close()]);
  }

  /** Postgres and the cache side by side for `ids` (read straight from both, bypassing the protocol). */
  async inspect(ids: number[]): Promise<TaskCacheView[]> {
    const rows = new Map((await this.db(() => queries.getTasksByIds(this.database.db, { ids }), { count: false })).map((t) => [t.id, t]));
    const cache = this.cache;
    let entries: CachedTask[] = ids.map(() => ({ state: "miss" }));
    let ttls = ids.map(() => -2);
    let cacheUnknown = false;
    if (cache) {
      try {
        [entries, ttls] = await Promise.all([cache.run("getTasks", (d) => d.getTasks(ids)), cache.run("ttls", (d) => d.ttls(ids))]);
      } catch {
        cacheUnknown = true; // Redis is down or the breaker open: say so rather than fail the page
      }
    }
    return ids.map((id, i) => {
      const row = rows.get(id);
      const entry = entries[i] ?? { state: "miss" };
      const ttl = ttls[i] ?? -2;
      const cache: TaskCacheView["cache"] =
        entry.state === "hit"
          ? { state: "hit", version: entry.task.version, title: entry.task.title, done: entry.task.done }
          : entry;
      const status: TaskCacheView["status"] = cacheUnknown
        ? "unknown"
        : entry.state === "miss"
          ? "absent"
          : entry.state === "tombstone"
            ? row ? "stale" : "tombstone"
            : !row ? "ghost" : JSON.stringify(entry.task) === JSON.stringify(row) ? "fresh" : "stale";
      return {
        id,
        postgres: row ? { version: row.version, title: row.title, done: row.done } : null,
        cache,
        ttlSeconds: ttl >= 0 ? ttl : null,
        status,
      };
    });
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

  /**
   * The cache epoch, read before any Postgres work whose result will be written to the cache, so
   * a flush or restart in between makes that write refuse itself. Null when the cache is down.
   */
  private async captureEpoch(cache: Cache | null = this.cache): Promise<string | null> {
    if (!cache) return null;
    if (this.knownEpoch) return this.knownEpoch;
    try {
      const epoch = await this.flights.do("epoch", () => cache.run("epoch", (d) => d.epoch()));
      this.knownEpoch = epoch;
      return epoch;
    } catch {
      return null;
    }
  }

  private noteResults(results: PutResult[]) {
    for (const r of results) {
      if (r === "stale-epoch") this.knownEpoch = null;
      if (r === "refused") this.stats.casRefusals++;
    }
  }

  /**
   * Miss on one task: read Postgres and compare-and-set it in. When the cache refuses because it
   * already holds something newer, that newer state is the answer; when the cache was flushed
   * since the epoch was read, read Postgres again rather than answer from before the flush.
   */
  private async fillOne(cache: Cache, id: number): Promise<Task | undefined> {
    const epoch = await this.captureEpoch(cache);
    const startedAt = this.now();
    const task = await this.db(() => queries.getTaskById(this.database.db, { id }));
    // An absent id gets no tombstone: it may simply not exist *yet*, and a tombstone would refuse its create.
    if (!task) return undefined;
    const [result] = await this.fill(cache, [task], startedAt, epoch);
    if (result === "refused") {
      const now = await cache.run("getTask", (d) => d.getTask(id), id).catch(() => null);
      if (now?.state === "tombstone") return undefined;
      if (now?.state === "hit" && now.task.version > task.version) return now.task;
    } else if (result === "stale-epoch" || result === "skipped") {
      return this.db(() => queries.getTaskById(this.database.db, { id }));
    }
    return task;
  }

  private async pageFromIndex(cache: Cache, ids: number[], limit: number, outcome: CacheOutcome): Promise<TaskPage> {
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
      outcome = "MISS";
      const rows = await this.flights.do(`tasks:${missing.join(",")}`, async () => {
        const epoch = await this.captureEpoch(cache);
        const startedAt = this.now();
        const fetched = await this.db(() => queries.getTasksByIds(this.database.db, { ids: missing }));
        await this.fill(cache, fetched, startedAt, epoch);
        return fetched;
      });
      for (const task of rows) found.set(task.id, task);
    }
    const tasks = pageIds.flatMap((id) => found.get(id) ?? []);
    return { tasks, nextCursor, cache: outcome };
  }

  /**
   * Miss-fill: compare-and-set each task. A fill whose Postgres read began too long ago, or with
   * no epoch (cache down), is skipped; a failed one leaves the entry absent or refusably older.
   */
  private async fill(cache: Cache, tasks: Task[], startedAt: number, epoch: string | null): Promise<FillResult[]> {
    if (tasks.length === 0) return [];
    await this.hooks.beforeFill?.(tasks.map((t) => t.id));
    if (!epoch || this.now() - startedAt > MAX_CACHE_WRITE_AGE_MS) return tasks.map(() => "skipped");
    try {
      const results = await Promise.all(tasks.map((task) => cache.run("putTask", (d) => d.putTask(task, epoch), task.id)));
      this.noteResults(results);
      results.forEach((r, i) => {
        const t = tasks[i] as Task;
        // "unchanged" is the common case of a fill racing nothing: the entry is already right.
        if (r !== "unchanged") this.events.record(r === "written" ? "fill" : r, { taskId: t.id, version: t.version, detail: r === "written" ? "miss-fill" : "miss-fill refused" });
      });
      return results;
    } catch {
      return tasks.map(() => "failed");
    }
  }

  /**
   * Builds the list index when none is complete. Only the lease holder builds; another instance
   * waits briefly for it. The build's one query returns every id plus the newest rows, which are
   * filled before the index is published, so the first page after a cold start costs one query.
   */
  private async buildIndex(cache: Cache): Promise<void> {
    const start = await cache.run("startIndexBuild", (d) => d.startIndexBuild(INDEX_LEASE_MS));
    if (start.state === "exists") return;
    if (start.state === "busy") {
      for (let waited = 0; waited < INDEX_WAIT_MS; waited += INDEX_POLL_MS) {
        await new Promise((r) => setTimeout(r, INDEX_POLL_MS));
        if (await cache.run("getIndexPage", (d) => d.getIndexPage({ limit: 0 }))) return;
      }
      return;
    }
    const epoch = await this.captureEpoch(cache);
    const startedAt = this.now();
    const snapshot = await this.db(() => queries.listAllTaskIdsWithNewest(this.database.db, { newest: INDEX_PREFILL }));
    await this.hooks.beforeIndexPublish?.();
    for (let i = 0; i < snapshot.ids.length; i += INDEX_BUILD_CHUNK) {
      const chunk = snapshot.ids.slice(i, i + INDEX_BUILD_CHUNK);
      if (!(await cache.run("addToIndexBuild", (d) => d.addToIndexBuild(start.token, chunk)))) return;
    }
    await this.fill(cache, snapshot.newest, startedAt, epoch);
    await cache.run("publishIndexBuild", (d) => d.publishIndexBuild(start.token));
  }

  private async writeThrough(
    operation: string,
    id: number,
    version: number,
    startedAt: number,
    changesMembership: boolean,
    write: (d: TaskCacheDriver) => Promise<PutResult>,
  ): Promise<void> {
    if (!this.cache) return;
    try {
      await this.hooks.beforeWriteThrough?.(id);
      if (this.now() - startedAt > MAX_CACHE_WRITE_AGE_MS) throw new Error("write-through too late to be trusted");
      const result = await this.cache.run(operation, write, id);
      this.noteResults([result]);
      const landed = result === "written" || result === "unchanged";
      this.events.record(landed ? (operation === "putTombstone" ? "tombstone" : "write-through") : result, {
        taskId: id,
        version,
        detail: result === "unchanged" ? `${operation} (already cached by a fill)` : operation,
      });
      if (result === "stale-epoch") {
        // The cache was flushed or restarted since this write began: the list index was updated,
        // but the entry must be rewritten from Postgres under the new epoch.
        await this.recordRepair(id, false, "cache epoch changed");
      }
    } catch (err) {
      // Postgres has committed; the cache may now hold an older version.
      await this.recordRepair(id, changesMembership, err);
    }
  }

  /**
   * Records that `id`'s entry (and maybe the list index) must be rewritten from Postgres: in this
   * process, so this instance stops reading the cache until it is done, and in the cache_repairs
   * table, so every other instance (or the repair route) does it too, even if this one dies.
   */
  private async recordRepair(id: number, indexToo: boolean, reason: unknown) {
    this.pendingRepairs.set(id, ++this.repairSeq);
    if (indexToo) this.indexDirty = true;
    this.events.record("repair-recorded", { taskId: id, detail: reason instanceof Error ? reason.message : String(reason) });
    if (this.cache?.breakerState === "closed") {
      log.warn("cache write-through failed; repair recorded", { taskId: id, reason: reason instanceof Error ? reason.message : String(reason) });
    }
    try {
      await this.db(() => queries.recordCacheRepair(this.database.db, { taskId: id, indexDirty: indexToo }));
    } catch {
      // Postgres went away right after the commit: the in-process record still holds.
    }
  }

  /** The cache, once every repair this instance owes has been carried out; null means "use Postgres only". */
  private async usableCache(): Promise<Cache | null> {
    if (!this.cache) return null;
    if (this.pendingRepairs.size === 0 && !this.indexDirty) return this.cache;
    await this.repairNow().catch(() => undefined);
    return this.pendingRepairs.size === 0 && !this.indexDirty ? this.cache : null;
  }

  /**
   * One repair pass: the ids recorded in this process and in the cache_repairs table are rewritten
   * from Postgres (compare-and-set under the current epoch; a deleted task is tombstoned above any
   * version), a dirty list index is dropped, and each record is cleared once done. Long-lived
   * servers run it on a timer; serverless deploys call /api/cache/repair from a scheduler.
   */
  repairNow(): Promise<{ repaired: number; remaining: number }> {
    const cache = this.cache;
    if (!cache) return Promise.resolve({ repaired: 0, remaining: 0 });
    return this.flights.do("repair", async () => {
      let durable: queries.CacheRepair[] = [];
      try {
        durable = await this.db(() => queries.listCacheRepairs(this.database.db, { limit: REPAIR_BATCH }), { count: false });
      } catch {
        // Postgres is down: repairs need it anyway; in-process ones are retried next pass.
      }
      const ids = new Set([...this.pendingRepairs.keys(), ...durable.map((r) => r.taskId)]);
      if (ids.size === 0 && !this.indexDirty) return { repaired: 0, remaining: 0 };
      if (this.indexDirty || durable.some((r) => r.indexDirty)) {
        const wasDirty = this.indexDirty;
        this.indexDirty = false;
        try {
          await cache.run("dropIndex", (d) => d.dropIndex());
        } catch (err) {
          this.indexDirty = this.indexDirty || wasDirty;
          throw err;
        }
      }
      let repaired = 0;
      for (const id of ids) {
        const seq = this.pendingRepairs.get(id);
        const epoch = await this.captureEpoch(cache);
        if (!epoch) throw new Error("cache epoch unavailable");
        const task = await this.db(() => queries.getTaskById(this.database.db, { id }), { count: false });
        // Ids are never reused, so a deleted task can be tombstoned above any version it ever had.
        const result = await cache.run("repair", (d) => (task ? d.putTask(task, epoch) : d.putTombstone(id, PG_INT_MAX, epoch)), id);
        this.noteResults([result]);
        if (result === "stale-epoch") throw new Error("cache epoch changed during repair");
        repaired++;
        this.stats.repairs++;
        this.events.record("repair", { taskId: id, version: task?.version, detail: task ? "rewritten from Postgres" : "tombstoned: gone from Postgres" });
        if (seq !== undefined && this.pendingRepairs.get(id) === seq) this.pendingRepairs.delete(id);
        const record = durable.find((r) => r.taskId === id);
        if (record) await this.db(() => queries.clearCacheRepair(this.database.db, record), { count: false });
      }
      if (repaired > 0) log.info("cache repaired", { repaired, remaining: this.pendingRepairs.size });
      return { repaired, remaining: this.pendingRepairs.size };
    });
  }

  private async missingOrConflict(id: number): Promise<TaskError> {
    const current = await this.db(() => queries.getTaskById(this.database.db, { id }));
    if (!current) return notFound(id);
    return new TaskError("precondition_failed", `Task ${id} has changed (now at version ${current.version}).`);
  }

  /** Runs a query, turning driver errors into TaskErrors without leaking their text. */
  private async db<T>(fn: () => Promise<T>, { count = true }: { count?: boolean } = {}): Promise<T> {
    if (count) this.stats.dbQueries++;
    const started = performance.now();
    try {
      const result = await fn();
      queryObserver?.((performance.now() - started) / 1000, "ok");
      return result;
    } catch (err) {
      queryObserver?.((performance.now() - started) / 1000, "error");
      const taskError = toTaskError(err);
      if (taskError.code === "service_unavailable") log.warn("database unavailable", { err });
      else if (taskError.code === "internal_error") log.error("database query failed", { err });
      throw taskError;
    }
  }
}

let queryObserver: ((seconds: number, outcome: "ok" | "error") => void) | undefined;
/** Told the duration of every Postgres statement the store runs (lib/metrics uses it). */
export function observeQueries(observer: typeof queryObserver) {
  queryObserver = observer;
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
  return new TaskStore({ database, cache, repairIntervalMs: env.CACHE_REPAIR_INTERVAL_MS });
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
