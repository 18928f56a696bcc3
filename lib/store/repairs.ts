import "server-only";
import { REVOCATION_TTL_SECONDS, type Cache } from "../cache";
import { CacheUnavailableError } from "../cache/types";
import { log } from "../log";
import * as queries from "../tasks/queries";
import { PG_INT_MAX } from "../tasks/schema";
import type { TaskStore } from "./taskStore";

const REPAIR_BATCH = 500;

type Owed = { tasks: Map<number, number>; indexDirty: boolean };
/** One user's share of a repair pass: task ids to rewrite, and whether to drop the list index. */
type UserWork = { ids: Set<number>; dropIndex: boolean };

/**
 * The repair ledger: cache writes that Postgres committed but the cache did not take (or took too
 * late), and cached auth values (sessions, API keys) whose delete failed. Each is recorded twice:
 * in this process, so this instance stops trusting that part of the cache until the repair is
 * done (one user's tasks; or, for auth, every cached session and key), and in the cache_repairs
 * table, so every other instance (or the repair route) repairs it too, even if this one dies.
 * See docs/decisions/004-durable-cache-repair.md.
 */
export class RepairLedger {
  /** Per user: task ids owed (with a counter, so a repair can't erase a newer failure) and a dirty index. */
  private readonly owed = new Map<string, Owed>();
  /** Auth values whose cached copy must be deleted before any cached auth value is trusted. */
  private readonly authOwed = new Map<string, { userId: string; seq: number }>();
  private seq = 0;
  /** Postgres statements the repair passes sent (metrics tell them apart from requests' statements). */
  passStatements = 0;
  /** Bumped each time the cache was seen failing (the breaker opened); 0 once a full pass ran after it. */
  private outages = 0;

  constructor(private readonly store: TaskStore) {}

  /**
   * The cache failed (the breaker opened): other instances may have recorded repairs in the table
   * meanwhile (revocations included) that this one has not seen, so before it trusts the cache
   * again it runs a full pass, which reads them.
   */
  noteOutage(): void {
    this.outages++;
  }

  /** Whether a full pass is still owed since the cache last failed. */
  get afterOutage(): boolean {
    return this.outages > 0;
  }

  /** Repairs this instance owes, of every user (while a user's are non-zero, that user's reads go to Postgres). */
  get count(): number {
    let n = this.authOwed.size;
    for (const o of this.owed.values()) n += o.tasks.size + (o.indexDirty ? 1 : 0);
    return n;
  }

  /** Repairs this instance owes for one user (what that user's cache lab shows). */
  countFor(userId: string): number {
    let n = 0;
    const owed = this.owed.get(userId);
    if (owed) n += owed.tasks.size + (owed.indexDirty ? 1 : 0);
    for (const a of this.authOwed.values()) if (a.userId === userId) n++;
    return n;
  }

  owes(userId: string): boolean {
    return this.owed.has(userId);
  }

  owesAuth(): boolean {
    return this.authOwed.size > 0;
  }

  /** Records that `taskId`'s entry (and maybe the user's list index) must be rewritten from Postgres. */
  async recordTask(userId: string, taskId: number, indexToo: boolean, reason: unknown): Promise<void> {
    const owed = this.owed.get(userId) ?? { tasks: new Map<number, number>(), indexDirty: false };
    owed.tasks.set(taskId, ++this.seq);
    owed.indexDirty ||= indexToo;
    this.owed.set(userId, owed);
    this.store.recordEvent("repair-recorded", { userId, taskId, detail: describe(reason) });
    // An outage is logged once, by the breaker; a master without its replicas once, by the cluster driver.
    const unconfirmed = reason instanceof CacheUnavailableError && reason.reason === "unconfirmed";
    if (this.store.cache?.breakerState === "closed" && !unconfirmed) {
      log.warn("cache write-through failed; repair recorded", { taskId, reason: describe(reason) });
    }
    try {
      await this.store.db(() => queries.recordCacheRepair(this.store.database.db, { kind: "task", userId, taskId, indexDirty: indexToo }), {
        count: false,
      });
    } catch {
      // Postgres went away right after the commit: the in-process record still holds.
    }
  }

  /**
   * Owed in this process only, for when Postgres itself just failed (a write whose outcome is
   * unknown): `taskId`'s entry is rewritten from Postgres, and the list index dropped if `indexToo`.
   * This user's reads stay on Postgres until it is done.
   */
  recordTaskInProcess(userId: string, taskId: number, indexToo: boolean, reason: string): void {
    const owed = this.owed.get(userId) ?? { tasks: new Map<number, number>(), indexDirty: false };
    owed.tasks.set(taskId, ++this.seq);
    owed.indexDirty ||= indexToo;
    this.owed.set(userId, owed);
    this.store.recordEvent("repair-recorded", { userId, taskId, detail: reason });
  }

  /** As recordTaskInProcess, for the list index alone (a create whose id is unknown). */
  recordIndex(userId: string, reason: string): void {
    const owed = this.owed.get(userId) ?? { tasks: new Map<number, number>(), indexDirty: false };
    owed.indexDirty = true;
    this.owed.set(userId, owed);
    this.store.recordEvent("repair-recorded", { userId, detail: reason });
  }

  /** Records that the cached copy of auth value `key` (a revoked session or key) must be deleted. */
  async recordAuth(userId: string, key: string, reason: unknown): Promise<void> {
    this.authOwed.set(key, { userId, seq: ++this.seq });
    // Tagged with its owner when known, so it shows in that user's cache lab and nobody else's.
    this.store.recordEvent("repair-recorded", { userId: userId === "" ? undefined : userId, detail: `auth value: ${describe(reason)}` });
    try {
      await this.store.db(() => queries.recordCacheRepair(this.store.database.db, { kind: "auth", userId, key }), { count: false });
    } catch {
      // As above: the in-process record holds until Postgres is back.
    }
  }

  private passDb<T>(fn: () => Promise<T>): Promise<T> {
    this.passStatements++;
    return this.store.db(fn, { count: false });
  }

  /**
   * One repair pass, of one user's repairs or of everyone's: the ids recorded in this process and
   * in the table are rewritten from Postgres (compare-and-set under the user's current epoch; a
   * deleted task is tombstoned above any version), a dirty list index is dropped, owed auth deletes
   * are retried, and each record is cleared once done. Long-lived servers run it on a timer;
   * serverless deploys call /api/cache/repair from a scheduler.
   *
   * Each user's repairs succeed or fail on their own: a user whose slot keeps failing keeps their
   * records owed in this process (their reads stay on Postgres), and everyone else's are still
   * carried out, including the settling of an outage.
   */
  pass(userId?: string): Promise<{ repaired: number; remaining: number }> {
    const cache = this.store.cache;
    if (!cache) return Promise.resolve({ repaired: 0, remaining: 0 });
    return this.store.flights.do(`repair:${userId ?? "*"}`, async () => {
      const outagesAtStart = this.outages;
      const settling = userId === undefined && outagesAtStart > 0;
      if (settling) {
        // Reach the cache before reading the table: repairs recorded before this point are all in
        // the table read below, and the cache is known to be back. While it is still down, a pass
        // settles nothing (what other instances record meanwhile must be read after it returns).
        const reachable = await cache.run("ping", () => cache.driver.ping(), "cache").then(
          () => true,
          () => false,
        );
        if (!reachable) return { repaired: 0, remaining: this.count };
      }
      let durable: queries.CacheRepair[] = [];
      let durableRead = false;
      try {
        durable = await this.passDb(() => queries.listCacheRepairs(this.store.database.db, { limit: REPAIR_BATCH, userId }));
        durableRead = true;
      } catch {
        // Postgres is down: repairs need it anyway; in-process ones are retried next pass.
      }
      // What to do, per user: task ids, whether to drop the index, and the durable rows it clears.
      const work = new Map<string, UserWork>();
      const workFor = (u: string) => {
        let w = work.get(u);
        if (!w) work.set(u, (w = { ids: new Set(), dropIndex: false }));
        return w;
      };
      for (const [u, owed] of this.owed) {
        if (userId !== undefined && u !== userId) continue;
        const w = workFor(u);
        for (const id of owed.tasks.keys()) w.ids.add(id);
        w.dropIndex ||= owed.indexDirty;
      }
      const authKeys = new Map<string, { userId: string; seq?: number }>();
      if (userId === undefined) for (const [key, owed] of this.authOwed) authKeys.set(key, { userId: owed.userId, seq: owed.seq });
      for (const r of durable) {
        if (r.kind === "task") {
          const w = workFor(r.userId);
          w.ids.add(r.taskId);
          w.dropIndex ||= r.indexDirty;
        } else if (!authKeys.has(r.key)) {
          authKeys.set(r.key, { userId: r.userId });
        }
      }
      const progress = { repaired: 0 };

      for (const [key, owed] of authKeys) {
        try {
          await cache.run("authDelete", () => cache.driver.revokeValue(key, REVOCATION_TTL_SECONDS), "auth value");
          if (owed.seq !== undefined && this.authOwed.get(key)?.seq === owed.seq) this.authOwed.delete(key);
          const record = durable.find((r) => r.kind === "auth" && r.key === key);
          if (record) await this.passDb(() => queries.clearCacheRepair(this.store.database.db, record));
          progress.repaired++;
          this.store.stats.repairs++;
        } catch (err) {
          this.noteFailure(err, { subject: "auth value" });
          // Owed here too now, even if another instance recorded it: no cached auth value is trusted until it is done.
          if (!this.authOwed.has(key)) this.authOwed.set(key, { userId: owed.userId, seq: ++this.seq });
        }
      }

      for (const [u, w] of work) {
        try {
          await this.repairUser(cache, u, w, durable, progress);
        } catch (err) {
          this.noteFailure(err, { userId: u });
          this.keepOwed(u, w);
        }
      }
      if (progress.repaired > 0) log.info("cache repaired", { repaired: progress.repaired, remaining: this.count });
      // A full pass that reached the cache and then read the whole table settles the outage it
      // followed: whatever it could not repair is now owed in this process, and gates only its user.
      if (settling && durableRead && durable.length < REPAIR_BATCH && this.outages === outagesAtStart) this.outages = 0;
      return { repaired: progress.repaired, remaining: this.count };
    });
  }

  /** One user's share of a pass. Throws on the first failure; what is done is taken out of `w`. */
  private async repairUser(cache: Cache, u: string, w: UserWork, durable: queries.CacheRepair[], progress: { repaired: number }): Promise<void> {
    const slot = cache.driver.forUser(u);
    const owed = this.owed.get(u);
    if (w.dropIndex) {
      const wasDirty = owed?.indexDirty ?? false;
      if (owed) owed.indexDirty = false;
      try {
        await cache.run("dropIndex", () => slot.dropIndex(), `{u:${u}}`);
        w.dropIndex = false;
      } catch (err) {
        if (owed) owed.indexDirty ||= wasDirty;
        throw err;
      }
    }
    for (const id of w.ids) {
      const seq = owed?.tasks.get(id);
      const epoch = await this.store.captureEpoch(u);
      if (!epoch) throw new Error("cache epoch unavailable");
      const state = await this.passDb(() => queries.getTaskState(this.store.database.db, { userId: u, id }));
      const task = state && "live" in state ? state.live : undefined;
      // A deleted task is tombstoned at its deleted row's version, so a restore (one above) still
      // outranks it; a purged one (ids are never reused) above any version it ever had.
      const tombstone = state && "deletedVersion" in state ? state.deletedVersion : PG_INT_MAX;
      const result = await cache.run("repair", () => (task ? slot.putTask(task, epoch) : slot.putTombstone(id, tombstone, epoch)), `{u:${u}}:task:${id}`);
      this.store.noteResults(u, [result]);
      if (result === "stale-epoch") throw new Error("cache epoch changed during repair");
      w.ids.delete(id);
      progress.repaired++;
      this.store.stats.repairs++;
      this.store.recordEvent("repair", {
        userId: u,
        taskId: id,
        version: task?.version,
        detail: task ? "rewritten from Postgres" : "tombstoned: gone from Postgres",
      });
      if (seq !== undefined && owed?.tasks.get(id) === seq) owed.tasks.delete(id);
      const record = durable.find((r) => r.kind === "task" && r.taskId === id);
      if (record) await this.passDb(() => queries.clearCacheRepair(this.store.database.db, record));
    }
    if (owed && owed.tasks.size === 0 && !owed.indexDirty) this.owed.delete(u);
  }

  /**
   * A user's repair failed part way: what is left (including what only the table named, recorded
   * by another instance) is owed in this process, so this user's reads stay on Postgres until a
   * later pass carries it out. The table rows stay too, for every other instance.
   */
  private keepOwed(u: string, w: UserWork): void {
    if (w.ids.size === 0 && !w.dropIndex) return;
    const owed = this.owed.get(u) ?? { tasks: new Map<number, number>(), indexDirty: false };
    for (const id of w.ids) if (!owed.tasks.has(id)) owed.tasks.set(id, ++this.seq);
    owed.indexDirty ||= w.dropIndex;
    this.owed.set(u, owed);
  }

  private noteFailure(err: unknown, context: Record<string, unknown>): void {
    // An unreachable cache is logged once, by the breaker; a failure of one slot is logged here.
    if (!(err instanceof CacheUnavailableError)) log.warn("cache repair failed; still owed", { ...context, reason: describe(err) });
  }
}

function describe(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}
