import type { CacheDriverName } from "../cache";
import type { CachedTask } from "../cache/types";
import * as queries from "../tasks/queries";
import type { Task } from "../tasks/schema";
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
  driver: CacheDriverName | "none";
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

/** Compares the user's list index (when complete) with the user's ids in Postgres. */
async function auditIndex(store: TaskStore, userId: string, report: CacheAuditReport): Promise<void> {
  const slot = store.cache?.driver.forUser(userId);
  if (!slot) return;
  const indexed = await slot.readWholeIndex();
  if (!indexed) return;
  report.listsChecked++;
  const record = recorder(report);
  const inPostgres = new Set(await store.db(() => queries.listAllTaskIds(store.database.db, { userId }), { count: false }));
  const inIndex = new Set(indexed);
  for (const id of indexed) if (!inPostgres.has(id)) record("ghost", id, "in list", "absent");
  for (const id of inPostgres) if (!inIndex.has(id)) record("missingFromList", id, "not in list", "present");
}

/**
 * Compares one user's cached entries and list index with Postgres. Exact when writes have stopped;
 * under writes, each disagreement is re-read once so an in-flight write isn't reported.
 */
export async function auditUser(store: TaskStore, userId: string): Promise<CacheAuditReport> {
  const report = emptyReport(store, "user");
  const slot = store.cache?.driver.forUser(userId);
  if (!slot) return report;
  const db = store.database.db;
  const suspects: number[] = [];
  for await (const batch of slot.scanEntries(500)) {
    report.checked += batch.length;
    const ids = batch.map((b) => b.id);
    const rows = new Map((await store.db(() => queries.getTasksByIds(db, { userId, ids }), { count: false })).map((t) => [t.id, t]));
    for (const { id, entry } of batch) if (judge(entry, rows.get(id))) suspects.push(id);
  }
  const record = recorder(report);
  for (const id of suspects) {
    const [entry, row] = await Promise.all([slot.getTask(id), store.db(() => queries.getTaskById(db, { userId, id }), { count: false })]);
    const kind = judge(entry, row);
    if (kind) record(kind, id, describe(entry), row ? `v${row.version}` : "absent");
  }
  await auditIndex(store, userId, report);
  report.ok = report.stale === 0 && report.ghosts === 0 && report.missingFromList === 0;
  return report;
}

/**
 * The whole-store audit (admins, schedulers, `npm run cache:audit`): every cached entry of every
 * user, in batches of `batchSize` keys with a pause between batches so live requests keep their
 * latency, then every user's complete list index.
 */
export async function auditAll(store: TaskStore, { batchSize = 500, pauseMs = 0 }: { batchSize?: number; pauseMs?: number } = {}): Promise<CacheAuditReport> {
  const report = emptyReport(store, "all");
  const driver = store.cache?.driver;
  if (!driver) return report;
  const db = store.database.db;
  const suspects: Array<{ userId: string; id: number }> = [];
  const users = new Set<string>();
  for await (const batch of driver.scanAllEntries(batchSize)) {
    report.checked += batch.length;
    const rows = await store.db(() => queries.getOwnedTasksByIds(db, { ids: batch.map((b) => b.id) }), { count: false });
    const byId = new Map(rows.map((r) => [r.task.id, r]));
    for (const { userId, id, entry } of batch) {
      users.add(userId);
      const row = byId.get(id);
      // A row that belongs to someone else is, for this user's slot, a row that isn't there.
      if (judge(entry, row && row.userId === userId ? row.task : undefined)) suspects.push({ userId, id });
    }
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  const record = recorder(report);
  for (const { userId, id } of suspects) {
    const slot = driver.forUser(userId);
    const [entry, row] = await Promise.all([slot.getTask(id), store.db(() => queries.getTaskById(db, { userId, id }), { count: false })]);
    const kind = judge(entry, row);
    if (kind) record(kind, id, describe(entry), row ? `v${row.version}` : "absent");
  }
  for (const userId of users) {
    await auditIndex(store, userId, report);
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  report.ok = report.stale === 0 && report.ghosts === 0 && report.missingFromList === 0;
  return report;
}
