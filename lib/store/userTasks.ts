import "server-only";
import { createHash } from "node:crypto";
import { MAX_CACHE_WRITE_AGE_MS, type Cache, type CacheOperation } from "../cache";
import type { CacheWrite, PutResult, UserTaskCache, ViewPage } from "../cache/types";
import type { CacheEventFields, CacheEventKind } from "../cacheEvents";
import type { LiveChange } from "../live/bus";
import { mayHaveCommitted } from "../db/errors";
import { databaseBudgetLeftMs, spendDatabaseBudget } from "../db/guard";
import { isTaskError, TaskError } from "../tasks/errors";
import * as queries from "../tasks/queries";
import { dueScore, PG_INT_MAX, type BatchInput, type CreateTaskInput, type Task, type TaskCounts, type TaskPatch, type TaskSort, type TaskStatus } from "../tasks/schema";
import type { TaskStore } from "./taskStore";

/** How a read was served: from the cache, filled from Postgres into the cache, or Postgres alone. */
export type CacheOutcome = "HIT" | "MISS" | "BYPASS";

export type TaskPage = { tasks: Task[]; nextCursor: string | null; counts: TaskCounts; cache: CacheOutcome };

/** Which view of the user's tasks a list reads, and where it continues. */
export type ListArgs = { limit: number; cursor?: number; status?: TaskStatus; sort?: TaskSort };

/** What a batch answers: the tasks it left, or the ids it deleted. */
export type BatchOutcome = { tasks: Task[] } | { ids: number[] };

const INDEX_LEASE_MS = 30_000;
const INDEX_BUILD_CHUNK = 2_000;
/** Rows filled along with a cold index build: the first page of any sensible size. */
const INDEX_PREFILL = 200;
/** How long an instance waits for another instance's index build before reading Postgres. */
const INDEX_WAIT_MS = 1_000;
const INDEX_POLL_MS = 25;

type FillResult = PutResult | "skipped" | "failed";
/** What a write-through was for, as the cache lab's event feed says it. */
type WriteLabel = "create" | "update" | "restore" | "delete" | "replay";
type BatchOp = BatchInput["op"];

/**
 * THE write-through protocol, for one user's tasks. Route handlers and server actions get one of
 * these from `store.forUser(userId)` and call only this. Postgres is written first; the cache
 * write follows in the same request and is a compare-and-set on the version, so it can never move
 * an entry backwards. Reads go through the cache and fall back to Postgres. Every query is scoped
 * to the owner and every cache key carries the owner's hash tag, so another user's task id is
 * simply missing here. See docs/decisions/002-cache-consistency-protocol.md and 006.
 *
 * Read top to bottom: reads, writes, then the fills, the index build and the write-through they use.
 */
export class UserTaskStore {
  private readonly slot: UserTaskCache | null;

  constructor(
    /** What every user's store shares (database, cache, ledger): see ./taskStore.ts. */
    readonly store: TaskStore,
    readonly userId: string,
  ) {
    this.slot = store.cache ? store.cache.driver.forUser(userId) : null;
  }

  // ---- reads -------------------------------------------------------------------------------

  async get(id: number): Promise<{ task: Task; cache: CacheOutcome }> {
    try {
      const result = await this.bounded(() => this.readOne(id));
      // A miss was recorded when it was found, before its fill.
      if (result.cache !== "MISS") this.record(result.cache === "HIT" ? "hit" : "bypass", { taskId: id, version: result.task.version, detail: "get" });
      return result;
    } catch (err) {
      if (isTaskError(err) && err.code === "not_found" && !(err as { missRecorded?: boolean }).missRecorded) {
        this.record(this.slot ? "hit" : "bypass", { taskId: id, detail: "get: not found" });
      }
      throw err;
    }
  }

  /** One page of a view (default: all tasks, newest first) and the user's counts. */
  async list(args: ListArgs): Promise<TaskPage> {
    const view = { status: args.status ?? "all", sort: args.sort ?? "new" } as const;
    const page = await this.bounded(() => this.readPage({ ...args, ...view }));
    // A miss was recorded when it was found, before its fills.
    if (page.cache !== "MISS") {
      this.record(page.cache === "HIT" ? "hit" : "bypass", { detail: `list ${view.status}${view.sort === "due" ? " by due date" : ""}: ${page.tasks.length} tasks` });
    }
    return page;
  }

  private async readOne(id: number): Promise<{ task: Task; cache: CacheOutcome }> {
    const cache = await this.usableCache();
    if (cache) {
      try {
        const entry = await this.run(cache, "getTask", (s) => s.getTask(id), id);
        if (entry.state === "hit") return { task: entry.task, cache: "HIT" };
        if (entry.state === "tombstone") throw notFound(id);
        this.record("miss", { taskId: id, detail: "get: not cached, reading Postgres" });
        const task = await this.store.flights.do(`${this.userId}/task:${id}`, () => this.fillOne(cache, id));
        if (!task) throw Object.assign(notFound(id), { missRecorded: true });
        return { task, cache: "MISS" };
      } catch (err) {
        if (isTaskError(err)) throw err;
        // Cache failure: the breaker has counted it; answer from Postgres.
      }
    }
    const task = await this.store.db(() => queries.getTaskById(this.store.database.db, { userId: this.userId, id }));
    if (!task) throw notFound(id);
    return { task, cache: "BYPASS" };
  }

  private async readPage({ limit, cursor, status, sort }: Required<Omit<ListArgs, "cursor">> & { cursor?: number }): Promise<TaskPage> {
    const cache = await this.usableCache();
    let outcome: CacheOutcome = "BYPASS";
    if (cache) {
      try {
        const args = { status, sort, after: cursor, limit: limit + 1 };
        let view = await this.run(cache, "getViewPage", (s) => s.getViewPage(args));
        if (view) return await this.pageFromView(cache, view, { limit, status }, "HIT");
        this.record("miss", { detail: `list ${status}: views not cached, building them from Postgres` });
        // Cold list: build the views (one build per instance; across instances a lease), then
        // serve from them, so the page reflects every write acknowledged before this read began.
        await this.store.flights.do(`${this.userId}/index`, () => this.buildIndex(cache));
        view = await this.run(cache, "getViewPage", (s) => s.getViewPage(args));
        if (view) return await this.pageFromView(cache, view, { limit, status }, "MISS", true);
        outcome = "MISS";
      } catch (err) {
        if (isTaskError(err)) throw err;
      }
    }
    // No cache, a failing one, or another instance's build still running: Postgres answers.
    const db = this.store.database.db;
    const [rows, counts] = await Promise.all([
      this.store.db(() => queries.listTasks(db, { userId: this.userId, status, sort, after: cursor, limit: limit + 1 })),
      this.store.db(() => queries.countTasks(db, { userId: this.userId })),
    ]);
    return { ...toPage(rows, limit, sort), counts, cache: outcome };
  }

  // ---- writes ------------------------------------------------------------------------------

  /**
   * One operation on up to 500 of the user's tasks: one Postgres transaction, then one cache script
   * call for all of them (they share the user's slot). All ids must be the user's (404 naming none
   * otherwise; 409 for a restore of a live task), or nothing changes.
   */
  async batch(input: BatchInput, options: { idempotencyKey?: string } = {}): Promise<BatchOutcome> {
    const ids = [...new Set(input.ids)];
    const command: WriteCommand = { op: "batch", batch: input.op, ids };
    if (options.idempotencyKey !== undefined) return (await this.write(options.idempotencyKey, command)).batch as BatchOutcome;
    return this.bounded(async () => (await this.executeBatch(command)).outcome);
  }

  async create(input: CreateTaskInput, options: { idempotencyKey?: string } = {}): Promise<Task> {
    if (options.idempotencyKey !== undefined) return (await this.write(options.idempotencyKey, { op: "create", input })).task as Task;
    return this.bounded(() => this.execute({ op: "create", input }));
  }

  async update(command: { id: number; patch: TaskPatch; expectedVersion?: number }, options: { idempotencyKey?: string } = {}): Promise<Task> {
    if (options.idempotencyKey !== undefined) return (await this.write(options.idempotencyKey, { op: "update", ...command })).task as Task;
    return this.bounded(() => this.execute({ op: "update", ...command }));
  }

  /** Undoes a delete (within DELETED_TASK_RETENTION_DAYS): the same id, at the next version. 404 when there is no such deleted task, 409 when it is not deleted. */
  async restore(id: number, options: { idempotencyKey?: string } = {}): Promise<Task> {
    if (options.idempotencyKey !== undefined) return (await this.write(options.idempotencyKey, { op: "restore", id })).task as Task;
    return this.bounded(() => this.execute({ op: "restore", id }));
  }

  /** Deletes (softly: restorable for 30 days). Returns the deleted state's version, the one its tombstone carries. */
  async remove(command: { id: number; expectedVersion?: number }, options: { idempotencyKey?: string } = {}): Promise<{ version: number }> {
    if (options.idempotencyKey !== undefined) return { version: (await this.write(options.idempotencyKey, { op: "delete", ...command })).deletedVersion as number };
    return { version: (await this.bounded(() => this.execute({ op: "delete", ...command }))).version };
  }

  /**
   * A write under an Idempotency-Key. The key, a hash of the command and the answer are stored in
   * the write's own transaction, so a retry finds both or neither: the first attempt's answer is
   * replayed (also when that attempt timed out, or its answer was lost) and nothing is written
   * twice; the same key with a different command is a 422. Concurrent attempts with one key
   * serialise on the key's unique index: the loser's transaction rolls back and it replays the
   * winner's answer. Failed writes (404, 412, 4xx) store nothing: nothing was written.
   */
  async write(key: string, command: WriteCommand): Promise<WriteOutcome> {
    return this.bounded(async () => {
      const requestHash = hashCommand(command);
      const db = this.store.database.db;
      for (let attempt = 0; ; attempt++) {
        const prior = await this.store.db(() => queries.findIdempotencyKey(db, { userId: this.userId, key }));
        if (prior && !prior.expired) return this.replay(prior, requestHash);
        if (prior) await this.store.db(() => queries.deleteExpiredIdempotencyKey(db, { userId: this.userId, key }));
        try {
          if (command.op === "batch") {
            const { outcome } = await this.executeBatch(command, { key, requestHash });
            return { status: 200, task: null, batch: outcome, replayed: false };
          }
          const task = await this.execute(command, { key, requestHash });
          if (command.op === "delete") return { status: 204, task: null, deletedVersion: task.version, replayed: false };
          return { status: STATUS_OF[command.op], task, replayed: false };
        } catch (err) {
          // Taken meanwhile by a concurrent attempt with this key: replay its answer.
          if (attempt === 0 && queries.isIdempotencyKeyTaken(err)) continue;
          throw err;
        }
      }
    });
  }

  /**
   * Runs one write: Postgres first (with the idempotency key, when there is one, in the same
   * transaction), then the write-through. When Postgres fails in a way that may have committed
   * anyway (a deadline passed, the connection dropped after the statement went out), the cache
   * is marked for repair before the 503 goes out: a commit nobody heard of must not leave the
   * cache behind Postgres.
   */
  private async execute(command: Exclude<WriteCommand, { op: "batch" }>, idempotency?: { key: string; requestHash: string }): Promise<Task> {
    const epoch = await this.captureEpoch();
    const startedAt = this.store.now();
    const db = this.store.database.db;
    const keyed = idempotency && { userId: this.userId, ...idempotency, status: STATUS_OF[command.op] };
    try {
      if (command.op === "create") {
        const { title, done = false, dueOn = null } = command.input;
        const task = await this.store.db(() =>
          keyed ? queries.insertTaskWithKey(db, { ...keyed, title, done, dueOn }) : queries.insertTask(db, { userId: this.userId, title, done, dueOn }),
        );
        await this.writeThrough("putTask", "create", task.id, task.version, startedAt, true, (s) => s.putTask(task, epoch ?? ""));
        this.publish([{ op: "create", id: task.id, version: task.version, task }]);
        return task;
      }
      if (command.op === "restore") {
        const { id } = command;
        const task = await this.store.db(() =>
          keyed ? queries.restoreTaskWithKey(db, { ...keyed, id }) : queries.restoreTask(db, { userId: this.userId, id }),
        );
        if (!task) throw await this.notRestorable(id);
        // The restored version is one above the tombstone's: the ordinary compare-and-set puts the
        // task back, and its id back in the views.
        await this.writeThrough("putTask", "restore", id, task.version, startedAt, true, (s) => s.putTask(task, epoch ?? ""));
        this.publish([{ op: "restore", id, version: task.version, task }]);
        return task;
      }
      if (command.op === "update") {
        const { id, patch, expectedVersion } = command;
        const task = await this.store.db(() =>
          keyed ? queries.updateTaskWithKey(db, { ...keyed, id, patch, expectedVersion }) : queries.updateTask(db, { userId: this.userId, id, patch, expectedVersion }),
        );
        if (!task) throw await this.missingOrConflict(id, expectedVersion);
        // A change of status or due date moves the id between views: the same script does it (and
        // a repair's rewrite would too, so a failure here needn't drop the views).
        await this.writeThrough("putTask", "update", id, task.version, startedAt, false, (s) => s.putTask(task, epoch ?? ""));
        this.publish([{ op: "update", id, version: task.version, task }]);
        return task;
      }
      const { id, expectedVersion } = command;
      const deleted = await this.store.db(() =>
        keyed ? queries.deleteTaskWithKey(db, { ...keyed, id, expectedVersion }) : queries.deleteTask(db, { userId: this.userId, id, expectedVersion }),
      );
      if (!deleted) throw await this.missingOrConflict(id, expectedVersion);
      // The (soft) delete bumped the row's version: its tombstone carries that version, above every
      // live one, so a late fill or write-through is refused, and a restore (one more) outranks it.
      const tombstoneVersion = deleted.version;
      await this.writeThrough("putTombstone", "delete", id, tombstoneVersion, startedAt, true, (s) => s.putTombstone(id, tombstoneVersion, epoch ?? ""));
      this.publish([{ op: "delete", id, version: tombstoneVersion }]);
      return { id, version: tombstoneVersion } as Task;
    } catch (err) {
      if (isTaskError(err) && err.code === "service_unavailable" && mayHaveCommitted(err.cause)) await this.outcomeUnknown(command);
      throw err;
    }
  }

  /**
   * Postgres failed after the statement went out: it may have committed. A create's id is unknown,
   * so the user's list index is dropped at once (the next list reads the ids from Postgres; the
   * cached tasks themselves stay good). An update or delete leaves the task's entry owed for repair,
   * which keeps this user's reads on Postgres until it is rewritten. Owed in this process only:
   * Postgres is what just failed.
   */
  private async outcomeUnknown(command: WriteCommand): Promise<void> {
    const cache = this.store.cache;
    if (!cache) return;
    if (command.op === "batch") {
      for (const id of command.ids) this.store.ledger.recordTaskInProcess(this.userId, id, true, "a batch's outcome is unknown");
      return;
    }
    if (command.op === "create") {
      {
        try {
          await this.run(cache, "dropIndex", (s) => s.dropIndex());
          this.record("repair", { detail: "list index dropped: a create's outcome is unknown" });
          return;
        } catch {
          // The cache is failing too: owe the drop.
        }
      }
      this.store.ledger.recordIndex(this.userId, "a create's outcome is unknown");
    } else {
      this.store.ledger.recordTaskInProcess(this.userId, command.id, command.op !== "update", "a write's outcome is unknown");
    }
  }

  /**
   * The first attempt's answer, again. Its write-through is done again too, from Postgres as it is
   * now (the first attempt may never have reached the cache), through the ordinary
   * compare-and-set, so a replay can't move the cache backwards.
   */
  private async replay(prior: queries.StoredIdempotencyKey, requestHash: string): Promise<WriteOutcome> {
    if (prior.requestHash !== requestHash) {
      throw new TaskError("idempotency_key_reused", "This Idempotency-Key was already used with a different request; use a new key for a new request.");
    }
    const epoch = await this.captureEpoch();
    const startedAt = this.store.now();
    if ("batch" in prior.response) {
      const stored = prior.response.batch;
      const ids = "tasks" in stored ? stored.tasks.map((t) => t.id) : stored.deleted.map((d) => d.id);
      const states = await this.store.db(() => queries.getTaskStates(this.store.database.db, { userId: this.userId, ids }));
      await this.writeThroughMany("replay", ids.map((id) => writeOf(id, states.get(id))), startedAt, epoch);
      const batch: BatchOutcome = "tasks" in stored ? { tasks: stored.tasks } : { ids };
      return { status: 200, task: null, batch, replayed: true };
    }
    const state = await this.store.db(() => queries.getTaskState(this.store.database.db, { userId: this.userId, id: prior.taskId }));
    if (state && "live" in state) {
      const now = state.live;
      await this.writeThrough("putTask", "replay", now.id, now.version, startedAt, true, (s) => s.putTask(now, epoch ?? ""));
    } else {
      // Deleted: tombstoned at the deleted row's version (a restore can still outrank it); purged: above any.
      const version = state ? state.deletedVersion : PG_INT_MAX;
      await this.writeThrough("putTombstone", "replay", prior.taskId, version, startedAt, true, (s) => s.putTombstone(prior.taskId, version, epoch ?? ""));
    }
    const response = prior.response;
    const task = "task" in response ? response.task : null;
    const deletedVersion = "deleted" in response ? response.deleted.version : undefined;
    return { status: prior.status as WriteOutcome["status"], task, deletedVersion, replayed: true };
  }

  // ---- internals ---------------------------------------------------------------------------

  /** Every operation's Postgres statements share one budget (DATABASE_TIMEOUT_MS): see lib/db/guard.ts. */
  private bounded<T>(fn: () => Promise<T>): Promise<T> {
    return this.store.database.bounded(fn);
  }

  /** One cache call on this user's slot, under the timeout and breaker. */
  private run<T>(cache: Cache, operation: CacheOperation, fn: (slot: UserTaskCache) => Promise<T>, taskId?: number): Promise<T> {
    const slot = this.slot as UserTaskCache;
    return cache.run(operation, () => fn(slot), taskId === undefined ? `{u:${this.userId}}` : `{u:${this.userId}}:task:${taskId}`);
  }

  /**
   * Tells this user's open event streams, on every instance, what a committed write changed. After
   * the write-through, so a reader that rereads on the news reads the new version from the cache.
   * Not awaited: the bus gives up on its own (a reader rereads after any gap), and the write's
   * answer doesn't wait for it.
   */
  private publish(changes: LiveChange[]): void {
    if (this.store.live && changes.length > 0) void this.store.live.publish(this.userId, changes);
  }

  private record(kind: CacheEventKind, fields: Omit<CacheEventFields, "userId"> = {}) {
    this.store.recordEvent(kind, { ...fields, userId: this.userId });
  }

  /** The user's cache epoch, read before any Postgres work whose result will be cached. Null when the cache is down. */
  private captureEpoch(): Promise<string | null> {
    return this.store.captureEpoch(this.userId);
  }

  /** The cache, once every repair owed for this user has been carried out; null means "use Postgres only". */
  private async usableCache(): Promise<Cache | null> {
    return this.store.usableCacheFor(this.userId);
  }

  /**
   * Miss on one task: read Postgres and compare-and-set it in. When the cache refuses because it
   * already holds something newer, that newer state is the answer; when the cache was flushed
   * since the epoch was read, read Postgres again rather than answer from before the flush.
   */
  private async fillOne(cache: Cache, id: number): Promise<Task | undefined> {
    const epoch = await this.captureEpoch();
    const startedAt = this.store.now();
    const read = () => this.store.db(() => queries.getTaskById(this.store.database.db, { userId: this.userId, id }));
    const task = await read();
    if (!task) {
      // A negative entry (version 0), so repeated reads of a missing id cost no query. It can't hide
      // a create: the create's version 1 outranks it, and a fill that lost the race is refused.
      await this.store.hooks.beforeFill?.([id]);
      if (epoch && this.store.now() - startedAt <= MAX_CACHE_WRITE_AGE_MS) {
        const result = await this.run(cache, "putMissing", (s) => s.putMissing(id, epoch), id).catch(() => "failed" as const);
        if (result === "written") this.record("fill", { taskId: id, version: 0, detail: "missing: negative entry" });
        if (result === "stale-epoch") this.store.noteResults(this.userId, [result]);
      }
      return undefined;
    }
    const [result] = await this.fill(cache, [task], startedAt, epoch);
    if (result === "refused") {
      const now = await this.run(cache, "getTask", (s) => s.getTask(id), id).catch(() => null);
      if (now?.state === "tombstone") return undefined;
      if (now?.state === "hit" && now.task.version > task.version) return now.task;
    } else if (result === "stale-epoch" || result === "skipped") {
      return read();
    }
    return task;
  }

  private async pageFromView(
    cache: Cache,
    view: ViewPage,
    { limit, status }: { limit: number; status: TaskStatus },
    outcome: CacheOutcome,
    missRecorded = false,
  ): Promise<TaskPage> {
    const pageIds = view.ids.slice(0, limit);
    const nextCursor = view.ids.length > limit ? String(view.positions[limit - 1]) : null;
    const entries = pageIds.length > 0 ? await this.run(cache, "getTasks", (s) => s.getTasks(pageIds)) : [];
    const found = new Map<number, Task>();
    const missing: number[] = [];
    entries.forEach((entry, i) => {
      const id = pageIds[i] as number;
      if (entry.state === "hit") found.set(id, entry.task);
      else if (entry.state === "miss") missing.push(id);
      // A tombstone means deleted: the id is leaving the views, leave it out of the page.
    });
    if (missing.length > 0) {
      outcome = "MISS";
      if (!missRecorded) this.record("miss", { detail: `list ${status}: ${missing.length} of ${pageIds.length} tasks not cached, reading Postgres` });
      const rows = await this.store.flights.do(`${this.userId}/tasks:${missing.join(",")}`, async () => {
        const epoch = await this.captureEpoch();
        const startedAt = this.store.now();
        const fetched = await this.store.db(() => queries.getTasksByIds(this.store.database.db, { userId: this.userId, ids: missing }));
        await this.fill(cache, fetched, startedAt, epoch);
        return fetched;
      });
      for (const task of rows) found.set(task.id, task);
    }
    // A task whose status the view doesn't share is between a commit and its write-through (the
    // view moved it already, its entry not yet): it is leaving this view, so it isn't shown in it.
    const fits = (t: Task) => status === "all" || t.done === (status === "done");
    const tasks = pageIds.flatMap((id) => {
      const t = found.get(id);
      return t && fits(t) ? [t] : [];
    });
    return { tasks, nextCursor, counts: view.counts, cache: outcome };
  }

  /**
   * Miss-fill: compare-and-set each task. A fill whose Postgres read began too long ago, or with
   * no epoch (cache down), is skipped; a failed one leaves the entry absent or refusably older.
   */
  private async fill(cache: Cache, tasks: Task[], startedAt: number, epoch: string | null): Promise<FillResult[]> {
    if (tasks.length === 0) return [];
    await this.store.hooks.beforeFill?.(tasks.map((t) => t.id));
    if (!epoch || this.store.now() - startedAt > MAX_CACHE_WRITE_AGE_MS) return tasks.map(() => "skipped");
    try {
      // One script call for the whole page: entries and view membership together.
      const results = await this.run(cache, "writeTasks", (s) => s.writeTasks(tasks.map((task) => ({ task })), epoch));
      this.store.noteResults(this.userId, results);
      results.forEach((r, i) => {
        const t = tasks[i] as Task;
        // "unchanged" is the common case of a fill racing nothing: the entry is already right.
        if (r !== "unchanged") this.record(r === "written" ? "fill" : r, { taskId: t.id, version: t.version, detail: r === "written" ? "miss-fill" : "miss-fill refused" });
      });
      return results;
    } catch {
      return tasks.map(() => "failed");
    }
  }

  /**
   * Builds the user's list index when none is complete. Only the lease holder builds; another
   * instance waits briefly for it. The build's one query returns every id plus the newest rows,
   * which are filled before the index is published, so the first page after a cold start costs
   * one query.
   */
  private async buildIndex(cache: Cache): Promise<void> {
    const start = await this.run(cache, "startIndexBuild", (s) => s.startIndexBuild(INDEX_LEASE_MS));
    if (start.state === "exists") return;
    if (start.state === "busy") {
      // Waiting for another build is waiting on Postgres (it is reading it): it counts against this
      // operation's budget, so the read that follows still ends within it.
      // While Postgres is known to be down there is nothing to wait for: that build can't finish.
      const waitMs = this.store.database.breakerState === "open" ? 0 : Math.min(INDEX_WAIT_MS, databaseBudgetLeftMs() / 2);
      for (let waited = 0; waited < waitMs; waited += INDEX_POLL_MS) {
        await new Promise((r) => setTimeout(r, INDEX_POLL_MS));
        spendDatabaseBudget(INDEX_POLL_MS);
        if (await this.run(cache, "getViewPage", (s) => s.getViewPage({ status: "all", sort: "new", limit: 0 }))) return;
      }
      return;
    }
    const epoch = await this.captureEpoch();
    const startedAt = this.store.now();
    let snapshot: Awaited<ReturnType<typeof queries.listIndexRowsWithNewest>>;
    try {
      snapshot = await this.store.db(() => queries.listIndexRowsWithNewest(this.store.database.db, { userId: this.userId, newest: INDEX_PREFILL }));
    } catch (err) {
      // Postgres failed: give the lease back, or every list (here and on other instances) would
      // wait for it, then read Postgres, until it ran out (INDEX_LEASE_MS).
      await this.run(cache, "abandonIndexBuild", (s) => s.abandonIndexBuild(start.token)).catch(() => false);
      throw err;
    }
    await this.store.hooks.beforeIndexPublish?.();
    for (let i = 0; i < snapshot.rows.length; i += INDEX_BUILD_CHUNK) {
      const chunk = snapshot.rows.slice(i, i + INDEX_BUILD_CHUNK);
      if (!(await this.run(cache, "addToIndexBuild", (s) => s.addToIndexBuild(start.token, chunk)))) return;
    }
    await this.fill(cache, snapshot.newest, startedAt, epoch);
    await this.run(cache, "publishIndexBuild", (s) => s.publishIndexBuild(start.token));
  }

  private async writeThrough(
    operation: "putTask" | "putTombstone",
    what: WriteLabel,
    id: number,
    version: number,
    startedAt: number,
    changesMembership: boolean,
    write: (slot: UserTaskCache) => Promise<PutResult>,
  ): Promise<void> {
    const cache = this.store.cache;
    if (!cache) return;
    try {
      await this.store.hooks.beforeWriteThrough?.(id);
      if (this.store.now() - startedAt > MAX_CACHE_WRITE_AGE_MS) throw new Error("write-through too late to be trusted");
      const result = await this.run(cache, operation, write, id);
      this.store.noteResults(this.userId, [result]);
      const landed = result === "written" || result === "unchanged";
      this.record(landed ? (operation === "putTombstone" ? "tombstone" : "write-through") : result, {
        taskId: id,
        version,
        detail: result === "unchanged" ? `${what} (already cached by a fill)` : what,
      });
      if (result === "stale-epoch") {
        // The cache was flushed or restarted since this write began: the list index was updated,
        // but the entry must be rewritten from Postgres under the new epoch.
        await this.store.ledger.recordTask(this.userId, id, false, "cache epoch changed");
      }
    } catch (err) {
      // Postgres has committed; the cache may now hold an older version.
      await this.store.ledger.recordTask(this.userId, id, changesMembership, err);
    }
  }

  /**
   * A batch's write-through: every item in one script call. A failure (or a late one) owes a repair
   * of each item, as writeThrough does for one.
   */
  private async writeThroughMany(what: BatchOp | "replay", writes: CacheWrite[], startedAt: number, epoch: string | null, membershipChanges = true): Promise<void> {
    const cache = this.store.cache;
    if (!cache || writes.length === 0) return;
    const idOf = (w: CacheWrite) => ("task" in w ? w.task.id : w.id);
    try {
      for (const w of writes) await this.store.hooks.beforeWriteThrough?.(idOf(w));
      if (this.store.now() - startedAt > MAX_CACHE_WRITE_AGE_MS) throw new Error("write-through too late to be trusted");
      const results = await this.run(cache, "writeTasks", (s) => s.writeTasks(writes, epoch ?? ""));
      this.store.noteResults(this.userId, results);
      for (const [i, result] of results.entries()) {
        const w = writes[i] as CacheWrite;
        const landed = result === "written" || result === "unchanged";
        this.record(landed ? ("task" in w ? "write-through" : "tombstone") : result, {
          taskId: idOf(w),
          version: "task" in w ? w.task.version : w.version,
          detail: `${what === "replay" ? "replay" : what} (batch of ${writes.length})`,
        });
        if (result === "stale-epoch") await this.store.ledger.recordTask(this.userId, idOf(w), false, "cache epoch changed");
      }
    } catch (err) {
      // A repair's rewrite applies view membership too; the views are dropped only for a delete or restore, as for one.
      for (const w of writes) await this.store.ledger.recordTask(this.userId, idOf(w), !("task" in w) || membershipChanges, err);
    }
  }

  private async executeBatch(command: Extract<WriteCommand, { op: "batch" }>, idempotency?: { key: string; requestHash: string }): Promise<{ outcome: BatchOutcome }> {
    const epoch = await this.captureEpoch();
    const startedAt = this.store.now();
    const key = idempotency && { ...idempotency, status: 200 };
    let result: queries.BatchResult;
    try {
      result = await this.store.db(() => queries.batchTasks(this.store.database.db, { userId: this.userId, op: command.batch, ids: command.ids, key }));
    } catch (err) {
      if (isTaskError(err) && err.code === "service_unavailable" && mayHaveCommitted(err.cause)) await this.outcomeUnknown(command);
      throw err;
    }
    if (!result.ok) {
      if (result.reason === "conflict") throw new TaskError("conflict", "Some of these tasks are not deleted, so they can't be restored; nothing was changed.");
      throw new TaskError("not_found", `Some of these tasks do not exist${command.batch === "restore" ? " or were not deleted in the last " + queries.DELETED_TASK_RETENTION_DAYS + " days" : ""}; nothing was changed.`);
    }
    if ("deleted" in result) {
      await this.writeThroughMany("delete", result.deleted.map((d) => ({ id: d.id, version: d.version, deleted: true as const })), startedAt, epoch);
      this.publish(result.deleted.map((d) => ({ op: "delete", id: d.id, version: d.version })));
      return { outcome: { ids: result.deleted.map((d) => d.id) } };
    }
    await this.writeThroughMany(command.batch, result.changed.map((task) => ({ task })), startedAt, epoch, command.batch === "restore");
    const op = command.batch === "restore" ? "restore" : "update";
    this.publish(result.changed.map((task) => ({ op, id: task.id, version: task.version, task })));
    return { outcome: { tasks: result.tasks } };
  }

  private async notRestorable(id: number): Promise<TaskError> {
    const current = await this.store.db(() => queries.getTaskById(this.store.database.db, { userId: this.userId, id }));
    if (!current) return new TaskError("not_found", `Task ${id} was not deleted in the last ${queries.DELETED_TASK_RETENTION_DAYS} days.`);
    return new TaskError("conflict", `Task ${id} is not deleted.`);
  }

  /**
   * Why a write matched no row. Without If-Match only an absent (or deleted) row does that: 404,
   * even if a restore brought it back since. With one, a row that is there now means it changed.
   */
  private async missingOrConflict(id: number, expectedVersion: number | undefined): Promise<TaskError> {
    if (expectedVersion === undefined) return notFound(id);
    const current = await this.store.db(() => queries.getTaskById(this.store.database.db, { userId: this.userId, id }));
    if (!current) return notFound(id);
    return new TaskError("precondition_failed", `Task ${id} has changed (now at version ${current.version}).`);
  }
}

/** A write, as the idempotency layer hashes and replays it. */
export type WriteCommand =
  | { op: "create"; input: CreateTaskInput }
  | { op: "update"; id: number; patch: TaskPatch; expectedVersion?: number }
  | { op: "delete"; id: number; expectedVersion?: number }
  | { op: "restore"; id: number }
  | { op: "batch"; batch: BatchInput["op"]; ids: number[] };

/** A write's answer: the HTTP status, the task (null for a delete), and whether it is a replay of an earlier attempt. */
export type WriteOutcome = {
  status: 200 | 201 | 204;
  task: Task | null;
  replayed: boolean;
  /** For a delete: the deleted state's version. */
  deletedVersion?: number;
  /** For a batch: its answer. */
  batch?: BatchOutcome;
};

const STATUS_OF = { create: 201, update: 200, delete: 204, restore: 200, batch: 200 } as const;

/** The request a key was first used with, as a hash: the command's fields in a fixed order. */
function hashCommand(command: WriteCommand): string {
  // A due date joins the hash only when given, so keys stored before due dates existed still match.
  const due = (dueOn: string | null | undefined) => (dueOn === undefined ? [] : [dueOn]);
  const canonical =
    command.op === "create"
      ? ["create", command.input.title, command.input.done ?? null, ...due(command.input.dueOn)]
      : command.op === "update"
        ? ["update", command.id, command.patch.title ?? null, command.patch.done ?? null, command.expectedVersion ?? null, ...due(command.patch.dueOn)]
        : command.op === "delete"
          ? ["delete", command.id, command.expectedVersion ?? null]
          : command.op === "restore"
            ? ["restore", command.id]
            : ["batch", command.batch, [...command.ids].sort((a, b) => a - b)];
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

/** The same error, word for word, for a missing id and for another user's id. */
export function notFound(id: number): TaskError {
  return new TaskError("not_found", `Task ${id} does not exist.`);
}

function toPage(rows: Task[], limit: number, sort: TaskSort): Pick<TaskPage, "tasks" | "nextCursor"> {
  const tasks = rows.slice(0, limit);
  const last = tasks[tasks.length - 1];
  return { tasks, nextCursor: rows.length > limit && last ? String(sort === "due" ? dueScore(last) : last.id) : null };
}

/** The cache write that brings an id in line with what Postgres holds (a purged id: a tombstone above any version). */
function writeOf(id: number, state: { live: Task } | { deletedVersion: number } | undefined): CacheWrite {
  if (state && "live" in state) return { task: state.live };
  return { id, version: state ? state.deletedVersion : PG_INT_MAX, deleted: true };
}
