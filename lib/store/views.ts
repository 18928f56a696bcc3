import "server-only";
import type { Cache } from "../cache";
import type { CachedTask } from "../cache/types";
import type { CacheDriverChoice } from "../names";
import { TaskError } from "../tasks/errors";
import * as queries from "../tasks/queries";
import { dueScore, TASK_SORTS, TASK_STATUSES, type Task } from "../tasks/schema";
import type { TaskStore } from "./taskStore";

// What the cache lab and the audits show: the cache and Postgres side by side, read straight from
// both, bypassing the protocol. Nothing here writes.

export type AuditFinding = {
  id: number;
  kind: "stale" | "ghost" | "missingFromList";
  cached: string;
  postgres: string;
};

/** What `npm run cache:audit` and GET /api/cache/audit report: the cache compared with Postgres. */
export type CacheAuditReport = {
  driver: CacheDriverChoice;
  /** Whose tasks were compared: one user's, or every user's. */
  scope: "user" | "all";
  /** Cached task entries compared (live entries and tombstones). */
  checked: number;
  /** Entries at another version or with other content than Postgres, or tombstones of live tasks. */
  stale: number;
  /** Cached tasks, or list-index ids, that Postgres no longer has (for that owner). */
  ghosts: number;
  /** Tasks Postgres has that a complete list index lacks. */
  missingFromList: number;
  /** Complete list indexes compared (0 or 1 for one user). */
  listsChecked: number;
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

/** One user's tasks `ids`, from Postgres and from the cache. Another user's id shows as absent from both. */
export async function inspectTasks(store: TaskStore, userId: string, ids: number[]): Promise<TaskCacheView[]> {
  const rows = new Map((await store.db(() => queries.getTasksByIds(store.database.db, { userId, ids }), { count: false })).map((t) => [t.id, t]));
  const cache = store.cache;
  let entries: CachedTask[] = ids.map(() => ({ state: "miss" }));
  let ttls = ids.map(() => -2);
  let cacheUnknown = false;
  if (cache) {
    const slot = cache.driver.forUser(userId);
    try {
      [entries, ttls] = await Promise.all([cache.run("getTasks", () => slot.getTasks(ids)), cache.run("ttls", () => slot.ttls(ids))]);
    } catch {
      cacheUnknown = true; // Redis is down or the breaker open: say so rather than fail the page
    }
  }
  return ids.map((id, i) => {
    const row = rows.get(id);
    const entry = entries[i] ?? { state: "miss" };
    const ttl = ttls[i] ?? -2;
    const cached: TaskCacheView["cache"] =
      entry.state === "hit" ? { state: "hit", version: entry.task.version, title: entry.task.title, done: entry.task.done } : entry;
    const status: TaskCacheView["status"] = cacheUnknown
      ? "unknown"
      : entry.state === "miss"
        ? "absent"
        : entry.state === "tombstone"
          ? row
            ? "stale"
            : "tombstone"
          : !row
            ? "ghost"
            : sameTask(entry.task, row)
              ? "fresh"
              : "stale";
    return {
      id,
      postgres: row ? { version: row.version, title: row.title, done: row.done } : null,
      cache: cached,
      ttlSeconds: ttl >= 0 ? ttl : null,
      status,
    };
  });
}

function sameTask(a: Task, b: Task): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function judge(entry: CachedTask, row: Task | undefined): AuditFinding["kind"] | null {
  if (entry.state === "hit") {
    if (!row) return "ghost";
    return sameTask(entry.task, row) ? null : "stale";
  }
  if (entry.state === "tombstone" && row) return "stale";
  return null;
}

function describe(entry: CachedTask): string {
  return entry.state === "hit" ? `v${entry.task.version}` : entry.state === "tombstone" ? `tombstone v${entry.version}` : "absent";
}

function emptyReport(store: TaskStore, scope: CacheAuditReport["scope"]): CacheAuditReport {
  return { driver: store.cacheDriverName, scope, checked: 0, stale: 0, ghosts: 0, missingFromList: 0, listsChecked: 0, ok: true, findings: [] };
}

function recorder(report: CacheAuditReport) {
  return (kind: AuditFinding["kind"], id: number, cached: string, postgres: string) => {
    if (kind === "stale") report.stale++;
    else if (kind === "ghost") report.ghosts++;
    else report.missingFromList++;
    if (report.findings.length < 20) report.findings.push({ id, kind, cached, postgres });
  };
}

export type AuditOptions = {
  /** Ids (or keys) read per round trip, and per Postgres page. */
  batchSize?: number;
  /** Pause between batches, so live requests keep their latency (the whole-store audit). */
  pauseMs?: number;
};

/** Disagreements waiting for their second look, at most; past this many they are re-read at once. */
const SUSPECTS_MAX = 1_000;

/**
 * One cache read of an audit: under the timeout and breaker, like every cache call. A cache that
 * can't be read can't be audited: that is a 503, not a report.
 */
async function auditRead<T>(cache: Cache, fn: () => Promise<T>, subject: string): Promise<T> {
  try {
    return await cache.run("audit", fn, subject);
  } catch (err) {
    throw new TaskError("service_unavailable", "The cache can't be read right now, so it can't be audited. Try again shortly.", { cause: err });
  }
}

/**
 * Entries that disagreed with Postgres once, per user. Each is read again (entry and row) before
 * it is reported, so a write caught between its commit and its write-through isn't reported as
 * drift; they wait, so that write has time to land, but never more than SUSPECTS_MAX of them.
 */
class Suspects {
  private readonly byUser = new Map<string, number[]>();
  private size = 0;

  constructor(
    private readonly store: TaskStore,
    private readonly cache: Cache,
    private readonly record: ReturnType<typeof recorder>,
    private readonly batchSize: number,
  ) {}

  async add(userId: string, id: number): Promise<void> {
    const ids = this.byUser.get(userId);
    if (ids) ids.push(id);
    else this.byUser.set(userId, [id]);
    if (++this.size >= SUSPECTS_MAX) await this.recheck();
  }

  async recheck(): Promise<void> {
    const db = this.store.database.db;
    for (const [userId, ids] of this.byUser) {
      const slot = this.cache.driver.forUser(userId);
      for (let i = 0; i < ids.length; i += this.batchSize) {
        const chunk = ids.slice(i, i + this.batchSize);
        const [entries, rows] = await Promise.all([
          auditRead(this.cache, () => slot.getTasks(chunk), `{u:${userId}}`),
          this.store.db(() => queries.getTasksByIds(db, { userId, ids: chunk }), { count: false }),
        ]);
        const byId = new Map(rows.map((t) => [t.id, t]));
        chunk.forEach((id, j) => {
          const entry = entries[j] ?? { state: "miss" };
          const row = byId.get(id);
          const kind = judge(entry, row);
          if (kind) this.record(kind, id, describe(entry), row ? `v${row.version}` : "absent");
        });
      }
    }
    this.byUser.clear();
    this.size = 0;
  }
}

/**
 * Ids in a view's order from a paged source (a view in the cache, or Postgres), one page in memory
 * at a time, each with its sort key (ascending in walk order). `peek()` is undefined at the end,
 * null when the source vanished (views dropped mid-walk).
 */
class ViewPages {
  private page: Array<{ id: number; key: number; position: number }> = [];
  private at = 0;
  private last = false;
  private after: number | undefined;

  constructor(
    private readonly fetch: (after: number | undefined) => Promise<Array<{ id: number; position: number }> | null>,
    private readonly pageSize: number,
    private readonly descending: boolean,
  ) {}

  async peek(): Promise<{ id: number; key: number } | undefined | null> {
    if (this.at < this.page.length) return this.page[this.at];
    if (this.last) return undefined;
    const page = await this.fetch(this.after);
    if (page === null) return null;
    this.page = page.map((p) => ({ ...p, key: this.descending ? -p.position : p.position }));
    this.at = 0;
    this.last = page.length < this.pageSize;
    if (page.length > 0) this.after = (page[page.length - 1] as { position: number }).position;
    return this.page[0];
  }

  advance(): void {
    this.at++;
  }
}

/**
 * Compares the user's complete views (if any) with Postgres, each view walked in its own order
 * against the same view read from Postgres, a page at a time. Ids only the cache's view has are
 * ghosts in it (`onListGhosts` is told them, a page at a time); ids only Postgres has, or an id at
 * another place (a stale due date), are missing from it. View findings are not read twice: under
 * live writes, a change in flight can show as one.
 */
async function auditIndex(
  store: TaskStore,
  cache: Cache,
  userId: string,
  report: CacheAuditReport,
  { pageSize, pause, onListGhosts }: { pageSize: number; pause: () => Promise<void>; onListGhosts?: (ids: number[]) => Promise<void> },
): Promise<void> {
  const slot = cache.driver.forUser(userId);
  const record = recorder(report);
  // An id is reported once per kind, however many of its views disagree.
  const reported = new Set<string>();
  const once = (kind: AuditFinding["kind"], id: number, cached: string, postgres: string) => {
    if (reported.has(`${kind}:${id}`)) return false;
    reported.add(`${kind}:${id}`);
    record(kind, id, cached, postgres);
    return true;
  };
  let first = true;
  for (const status of TASK_STATUSES) {
    for (const sort of TASK_SORTS) {
      let vanished = false;
      const inCache = new ViewPages(
        async (after) => {
          await pause();
          const page = await auditRead(cache, () => slot.getViewPage({ status, sort, after, limit: pageSize }), `{u:${userId}}`);
          return page && page.ids.map((id, i) => ({ id, position: page.positions[i] as number }));
        },
        pageSize,
        sort === "new",
      );
      const inPostgres = new ViewPages(
        async (after) => {
          const rows = await store.db(() => queries.listTasks(store.database.db, { userId, status, sort, after, limit: pageSize }), { count: false });
          return rows.map((t) => ({ id: t.id, position: sort === "new" ? t.id : dueScore(t) }));
        },
        pageSize,
        sort === "new",
      );
      let ghosts: number[] = [];
      const flushGhosts = async () => {
        if (ghosts.length > 0 && onListGhosts) await onListGhosts(ghosts);
        ghosts = [];
      };
      const where = `${status} view${sort === "due" ? " by due date" : ""}`;
      for (;;) {
        const c = await inCache.peek();
        // No complete views: nothing to compare. The views expired or were dropped mid-walk: nothing left to compare.
        if (c === null) {
          vanished = true;
          break;
        }
        if (first) {
          report.listsChecked++;
          first = false;
        }
        const p = await inPostgres.peek();
        if (p === null) break;
        if (c === undefined && p === undefined) break;
        if (c !== undefined && (p === undefined || c.key < p.key)) {
          // The entry of a ghost is read too (is it live?), once.
          if (once("ghost", c.id, `in ${where}`, "absent")) ghosts.push(c.id);
          if (ghosts.length >= pageSize) await flushGhosts();
          inCache.advance();
        } else if (p !== undefined && (c === undefined || p.key < c.key)) {
          once("missingFromList", p.id, `not in ${where}`, "present");
          inPostgres.advance();
        } else {
          // The same position: the same id (a position carries its id).
          inCache.advance();
          inPostgres.advance();
        }
      }
      await flushGhosts();
      if (vanished) return;
    }
  }
}

function finish(report: CacheAuditReport): CacheAuditReport {
  report.ok = report.stale === 0 && report.ghosts === 0 && report.missingFromList === 0;
  return report;
}

/**
 * Compares one user's cache with Postgres, at a cost that grows with that user's tasks only: the
 * user's rows are read from Postgres a page at a time and their entries by id (one MGET a page),
 * then the list index is walked against the user's ids, and the entries of ids only the index
 * has are read too. Every cache read goes through the breaker. Exact when writes have stopped;
 * under writes, each disagreeing entry is re-read once so an in-flight write isn't reported.
 *
 * What it can't see: a cached entry whose id is neither the user's in Postgres nor in their list
 * index (a deleted task whose tombstone write failed after its index was rebuilt, or a bug that
 * cached a task in the wrong slot). Finding one would take a walk of the whole keyspace, which no
 * signed-in user may trigger; the whole-store audit (admins, `npm run cache:audit`) does that walk,
 * and the entry expires with its TTL.
 */
export async function auditUser(store: TaskStore, userId: string, { batchSize = 500 }: AuditOptions = {}): Promise<CacheAuditReport> {
  const report = emptyReport(store, "user");
  const cache = store.cache;
  if (!cache) return report;
  const slot = cache.driver.forUser(userId);
  const db = store.database.db;
  const suspects = new Suspects(store, cache, recorder(report), batchSize);
  const check = async (ids: number[], rows: Map<number, Task>) => {
    const entries = await auditRead(cache, () => slot.getTasks(ids), `{u:${userId}}`);
    for (const [i, id] of ids.entries()) {
      const entry = entries[i] ?? { state: "miss" };
      if (entry.state !== "miss") report.checked++;
      if (judge(entry, rows.get(id))) await suspects.add(userId, id);
    }
  };
  // 1. Every task the user has in Postgres, against its cached entry.
  let after: number | undefined;
  for (;;) {
    const rows = await store.db(() => queries.listTasks(db, { userId, after, limit: batchSize }), { count: false });
    if (rows.length > 0) await check(rows.map((t) => t.id), new Map(rows.map((t) => [t.id, t])));
    if (rows.length < batchSize) break;
    after = rows[rows.length - 1]?.id;
  }
  // 2. The list index against Postgres; the entries of ids only the index has are ghosts if live.
  await auditIndex(store, cache, userId, report, { pageSize: batchSize, pause: async () => {}, onListGhosts: (ids) => check(ids, new Map()) });
  await suspects.recheck();
  return finish(report);
}

/**
 * The whole-store audit (admins, schedulers, `npm run cache:audit`): every cached entry of every
 * user (a walk of the keyspace, `batchSize` keys per step), then every complete list index, page
 * by page. Memory stays bounded by the batch size (and SUSPECTS_MAX), whatever the store holds,
 * and it pauses `pauseMs` between batches so live requests keep their latency.
 */
export async function auditAll(store: TaskStore, { batchSize = 500, pauseMs = 0 }: AuditOptions = {}): Promise<CacheAuditReport> {
  const report = emptyReport(store, "all");
  const cache = store.cache;
  if (!cache) return report;
  const db = store.database.db;
  const pause = () => (pauseMs > 0 ? new Promise<void>((r) => setTimeout(r, pauseMs)) : Promise.resolve());
  const suspects = new Suspects(store, cache, recorder(report), batchSize);
  const entries = cache.driver.scanAllEntries(batchSize);
  for (;;) {
    const step = await auditRead(cache, () => entries.next(), "every entry");
    if (step.done) break;
    const batch = step.value;
    report.checked += batch.length;
    const rows = await store.db(() => queries.getOwnedTasksByIds(db, { ids: batch.map((b) => b.id) }), { count: false });
    const byId = new Map(rows.map((r) => [r.task.id, r]));
    for (const { userId, id, entry } of batch) {
      const row = byId.get(id);
      // A row that belongs to someone else is, for this user's slot, a row that isn't there.
      if (judge(entry, row && row.userId === userId ? row.task : undefined)) await suspects.add(userId, id);
    }
    await pause();
  }
  await suspects.recheck();
  const indexes = cache.driver.scanAllIndexes(batchSize);
  for (;;) {
    const step = await auditRead(cache, () => indexes.next(), "every list index");
    if (step.done) break;
    // SCAN may name a key twice (while Redis resizes its table): such a list is then counted twice.
    for (const userId of new Set(step.value)) {
      await auditIndex(store, cache, userId, report, { pageSize: batchSize, pause });
      await pause();
    }
  }
  return finish(report);
}
