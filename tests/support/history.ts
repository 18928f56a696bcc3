import { performance } from "node:perf_hooks";
import type { CacheOutcome } from "@/lib/taskStore";
import type { TaskCounts, TaskSort, TaskStatus } from "@/lib/tasks/schema";

/**
 * A history of concurrent operations, each timed from its call to its answer, and the checker
 * that holds every read in it to invariant 3 (read your writes, across instances) and to the
 * tombstone rule. Used by tests/consistency/history.test.ts and the fault tests' workload.
 */
export type HistoryEvent =
  /** An acknowledged create (version 1), update, restore or batch change: the version it returned, and whether that state is done. */
  | { kind: "write"; user: string; id: number; version: number; done: boolean; start: number; end: number }
  /** A delete, acknowledged (with the deleted state's version) or not: one under way excuses a read that misses the task. */
  | { kind: "delete"; user: string; id: number; start: number; end: number; acked: boolean; version?: number }
  /** A read of one task; no `version` means it answered not_found. */
  | { kind: "get"; user: string; id: number; start: number; end: number; version?: number; cache?: CacheOutcome }
  /** The first page of a view of a user's tasks; `complete` when it had no next page; the counts it came with. */
  | {
      kind: "list";
      user: string;
      start: number;
      end: number;
      seen: Map<number, number>;
      complete: boolean;
      cache: CacheOutcome;
      status: TaskStatus;
      sort: TaskSort;
      counts: TaskCounts;
    };

export class History {
  readonly events: HistoryEvent[] = [];
  /** The owner of every task created in the history. */
  readonly owner = new Map<number, string>();

  now(): number {
    return performance.now();
  }

  created(user: string, task: { id: number; version: number; done: boolean }, start: number): void {
    this.owner.set(task.id, user);
    this.events.push({ kind: "write", user, id: task.id, version: task.version, done: task.done, start, end: this.now() });
  }

  updated(user: string, task: { id: number; version: number; done: boolean }, start: number): void {
    this.events.push({ kind: "write", user, id: task.id, version: task.version, done: task.done, start, end: this.now() });
  }

  /** A delete; `version` (the deleted state's) when acknowledged, so a later restore can be told from it. */
  deleted(user: string, id: number, start: number, acked: boolean, version?: number): void {
    this.events.push({ kind: "delete", user, id, start, end: this.now(), acked, version });
  }

  /** A get that answered `read`, or not_found when `read` is undefined. */
  got(user: string, id: number, start: number, read?: { task: { version: number }; cache: CacheOutcome }): void {
    this.events.push({ kind: "get", user, id, start, end: this.now(), version: read?.task.version, cache: read?.cache });
  }

  listed(
    user: string,
    start: number,
    page: { tasks: Array<{ id: number; version: number }>; nextCursor: string | null; cache: CacheOutcome; counts: TaskCounts },
    view: { status: TaskStatus; sort: TaskSort } = { status: "all", sort: "new" },
  ): void {
    const seen = new Map(page.tasks.map((t) => [t.id, t.version]));
    this.events.push({ kind: "list", user, start, end: this.now(), seen, complete: page.nextCursor === null, cache: page.cache, ...view, counts: page.counts });
  }
}

export type HistoryReport = {
  /** Gets and lists that answered with a task or a page. */
  reads: number;
  /** Of those, the ones served from the cache (HIT). */
  hits: number;
  /** Task reads checked: one per get, one per task on a page and per task a page had to show. */
  readsChecked: number;
  /** A version older than one acknowledged before the read began. */
  stale: number;
  /** A task whose delete was acknowledged before the read began. */
  deletedReads: number;
  /** not_found, or left off a page, though created before the read began and not being deleted. */
  lost: number;
  /** A page that showed another user's task. */
  leaked: number;
  /** Lists whose counts no order of the operations around them could give. */
  badCounts: number;
  violations: string[];
};

export function checkHistory(history: History): HistoryReport {
  const report: HistoryReport = { reads: 0, hits: 0, readsChecked: 0, stale: 0, deletedReads: 0, lost: 0, leaked: 0, badCounts: 0, violations: [] };
  type Ack = { end: number; version: number; deleted?: boolean; done?: boolean };
  /** Every write and delete of each id (acknowledged or not): what could have changed it while a read ran. */
  const touches = new Map<number, Array<{ start: number; end: number }>>();
  const acks = new Map<number, Ack[]>();
  const deletes = new Map<number, Array<{ start: number; end: number }>>();
  const push = <T>(map: Map<number, T[]>, id: number, value: T) => {
    const list = map.get(id);
    if (list) list.push(value);
    else map.set(id, [value]);
  };
  for (const e of history.events) {
    if (e.kind === "write" || e.kind === "delete") push(touches, e.id, { start: e.start, end: e.end });
    if (e.kind === "write") push(acks, e.id, { end: e.end, version: e.version, done: e.done });
    if (e.kind === "delete") {
      push(deletes, e.id, { start: e.start, end: e.end });
      // Without its version (an older caller), a delete counts as the newest state.
      if (e.acked) push(acks, e.id, { end: e.end, version: e.version ?? Number.MAX_SAFE_INTEGER, deleted: true });
    }
  }

  const checkRead = (id: number, version: number | undefined, start: number, end: number, what: string) => {
    report.readsChecked++;
    // Versions order a task's states (a delete bumps it, a restore bumps it again): the state
    // acknowledged last is the one with the highest version, whatever order the acks arrived in.
    const before = (acks.get(id) ?? []).filter((a) => a.end < start);
    const newestAck = before.reduce<Ack | undefined>((m, a) => (!m || a.version > m.version ? a : m), undefined);
    const newest = newestAck?.version ?? 0;
    const deleted = newestAck?.deleted === true;
    if (version !== undefined) {
      if (deleted && version <= newest) {
        report.deletedReads++;
        report.violations.push(`${what}: task ${id} v${version} read after its delete was acknowledged`);
      } else if (version < newest) {
        report.stale++;
        report.violations.push(`${what}: task ${id} read at v${version}, v${newest} was acknowledged before the read began`);
      }
    } else if (newest > 0 && !deleted && !(deletes.get(id) ?? []).some((d) => d.start < end && d.end > (newestAck?.end ?? 0))) {
      // Not found, though the newest acknowledged state is live, and no delete that could have come
      // after it (one that began before this read ended and ended after that state) excuses it.
      report.lost++;
      report.violations.push(`${what}: task ${id} (v${newest} acknowledged) not found, and no delete was under way`);
    }
  };

  for (const e of history.events) {
    if (e.kind === "get") {
      if (e.version !== undefined) {
        report.reads++;
        if (e.cache === "HIT") report.hits++;
      }
      checkRead(e.id, e.version, e.start, e.end, "get");
    }
    if (e.kind !== "list") continue;
    report.reads++;
    if (e.cache === "HIT") report.hits++;
    for (const [id, version] of e.seen) {
      if (history.owner.get(id) !== e.user) {
        report.leaked++;
        report.violations.push(`list: user ${e.user} was shown task ${id} of user ${history.owner.get(id)}`);
      }
      checkRead(id, version, e.start, e.end, "list");
    }
    // What each of the user's tasks was, for sure, when the read began: its newest state
    // acknowledged before then, unless a write or delete of it overlapped the read.
    const fits = (done: boolean | undefined) => e.status === "all" || done === (e.status === "done");
    const sure = { live: 0, open: 0, done: 0 };
    let possible = 0;
    // A newest-first page with a next page must hold every task above its last id; a due-ordered
    // one is only checked when complete.
    const lowest = e.complete ? 0 : e.sort === "new" ? Math.min(...e.seen.keys()) : Infinity;
    for (const [id, list] of acks) {
      if (history.owner.get(id) !== e.user) continue;
      const before = list.filter((a) => a.end < e.start);
      const newestAck = before.reduce<Ack | undefined>((m, a) => (!m || a.version > m.version ? a : m), undefined);
      const overlaps = (t: { start: number; end: number }) => t.start < e.end && t.end > e.start;
      const overlapped = (touches.get(id) ?? []).some(overlaps);
      // Only a delete takes a task out of the "all" view; an update may move it between the others.
      const excused = e.status === "all" ? (deletes.get(id) ?? []).some(overlaps) : overlapped;
      const begun = (touches.get(id) ?? []).some((t) => t.start < e.end);
      if (begun && (overlapped || (newestAck && !newestAck.deleted))) possible++;
      if (!newestAck || newestAck.deleted) continue;
      if (!overlapped) {
        sure.live++;
        if (newestAck.done) sure.done++;
        else sure.open++;
      }
      if (excused || id < lowest || e.seen.has(id) || !fits(newestAck.done)) continue;
      // Live and in this view for sure, yet not on the page.
      report.readsChecked++;
      report.lost++;
      report.violations.push(`list ${e.status}/${e.sort}: task ${id} (v${newestAck.version}, ${newestAck.done ? "done" : "open"}) missing`);
    }
    const c = e.counts;
    const countsOk =
      c.all === c.open + c.done && c.all >= sure.live && c.all <= possible && c.open >= sure.open && c.done >= sure.done && c.open <= possible - sure.done && c.done <= possible - sure.open;
    if (!countsOk) {
      report.badCounts++;
      report.violations.push(`list counts ${JSON.stringify(c)}: for sure ${JSON.stringify(sure)} live, at most ${possible}`);
    }
  }
  return report;
}
