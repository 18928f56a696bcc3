import "server-only";
import type { Cache } from "../cache";
import type { PutResult } from "../cache/types";
import { CacheEventLog, type CacheEventFields, type CacheEventKind } from "../cacheEvents";
import type { Database } from "../db/client";
import { toTaskError } from "../db/errors";
import type { LiveBus } from "../live/bus";
import { LabRelay } from "../live/labRelay";
import { log } from "../log";
import type { BreakerState, CacheDriverChoice } from "../names";
import { SingleFlight } from "../singleFlight";
import * as queries from "../tasks/queries";
import { NO_OBSERVER, type StoreObserver } from "./observer";
import { RepairLedger } from "./repairs";
import { UserTaskStore } from "./userTasks";
import { auditAll, auditUser, inspectTasks, type AuditOptions, type CacheAuditReport, type TaskCacheView } from "./views";

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

export type HealthReport = {
  /** ok; degraded: the cache is down or its breaker open (the app still works); down: Postgres is unreachable. */
  status: "ok" | "degraded" | "down";
  db: { ok: boolean; latencyMs: number | null; breaker: BreakerState | null };
  cache: { driver: CacheDriverChoice; ok: boolean; latencyMs: number | null; breaker: BreakerState | null };
};

export type TaskStoreDeps = {
  database: Database;
  cache: Cache | null;
  hooks?: StoreTestHooks;
  /** Told what the store does (queries, cache calls and events, breaker changes): lib/metrics.ts in production. */
  observer?: StoreObserver;
  now?: () => number;
  /** Run a repair pass this often (ms); 0 or absent: only when a read finds repairs owed. */
  repairIntervalMs?: number;
  /** Where committed changes are published for live updates (GET /api/tasks/events); none: no live updates. */
  live?: LiveBus | null;
};

/** How often the repair pass also deletes expired idempotency keys. */
const KEY_PURGE_INTERVAL_MS = 10 * 60_000;

/** Epochs remembered per user; past this many users the oldest are forgotten (and re-read when needed). */
const KNOWN_EPOCHS_MAX = 10_000;

/**
 * What every user's store shares in one process: the database, the cache connection, single
 * flights, the epochs last seen, the repair ledger, counters, the cache event log and the one
 * observer that everything the store does is reported to (./observer.ts). Requests use
 * `forUser(userId)`, which returns the write-through protocol scoped to that user
 * (./userTasks.ts); everything per user (keys, epoch, flights, repairs, the "cache usable" gate)
 * hangs off that scope, so one user's fault never sends another user's reads to Postgres.
 */
export class TaskStore {
  readonly database: Database;
  readonly cache: Cache | null;
  readonly live: LiveBus | null;
  /** Relays cache events between instances while someone watches a user's lab; null with one instance. */
  readonly labRelay: LabRelay | null;
  readonly hooks: StoreTestHooks;
  readonly observer: StoreObserver;
  readonly now: () => number;
  readonly flights = new SingleFlight();
  readonly ledger: RepairLedger;
  /** Counters for tests and metrics: Postgres statements the protocol issued, compare-and-set refusals, repairs done. */
  readonly stats = { dbQueries: 0, casRefusals: 0, repairs: 0 };
  /** Each user's last cache events and counters per kind, for their cache lab page. */
  readonly events = new CacheEventLog();
  private readonly knownEpochs = new Map<string, string>();
  private lastKeyPurge = 0;
  private repairTimer: ReturnType<typeof setInterval> | undefined;
  /** What the constructor subscribed to (the cache and the database may outlive this store, as in tests). */
  private readonly unsubscribe: Array<() => void> = [];

  constructor(deps: TaskStoreDeps) {
    this.database = deps.database;
    this.cache = deps.cache;
    this.live = deps.live ?? null;
    this.labRelay = this.live?.lab ? new LabRelay(this.live.lab, (kind, fields) => this.events.record(kind, fields)) : null;
    void this.labRelay?.start();
    this.hooks = deps.hooks ?? {};
    this.observer = deps.observer ?? NO_OBSERVER;
    this.now = deps.now ?? Date.now;
    this.ledger = new RepairLedger(this);
    const observer = this.observer;
    const cache = this.cache;
    if (cache) {
      this.unsubscribe.push(
        cache.breaker.onTransition((from, to) => {
          if (to === "open") this.ledger.noteOutage();
          this.recordEvent("breaker", { detail: `${from} → ${to}` });
          observer.onBreaker?.("cache", from, to);
        }),
      );
      if (observer.onCacheCall) this.unsubscribe.push(cache.onCall((operation, outcome, seconds) => observer.onCacheCall?.(operation, outcome, seconds)));
      // Keys now on another cluster node (a failover, a reshard): as after an outage, the repairs
      // other instances recorded are read before the cache is trusted again (ADR 014).
      const topology = cache.driver.onTopologyChange?.(() => this.ledger.noteOutage());
      if (topology) this.unsubscribe.push(topology);
    }
    if (observer.onBreaker) this.unsubscribe.push(this.database.onBreakerTransition((from, to) => observer.onBreaker?.("database", from, to)));
    if (cache && deps.repairIntervalMs) {
      this.repairTimer = setInterval(() => void this.repairNow().catch(() => undefined), deps.repairIntervalMs);
      this.repairTimer.unref();
    }
    observer.onStoreCreated?.(this);
  }

  /** Records a cache event: in its owner's log (the cache lab), and to the observer. */
  recordEvent(kind: CacheEventKind, fields: CacheEventFields = {}): void {
    this.events.record(kind, fields);
    this.labRelay?.note(kind, fields);
    this.observer.onCacheEvent?.(kind, fields);
  }

  /** The write-through store of one user's tasks. */
  forUser(userId: string): UserTaskStore {
    return new UserTaskStore(this, userId);
  }

  /** Repairs this instance owes, all users together. */
  get pendingRepairCount(): number {
    return this.ledger.count;
  }

  get cacheDriverName(): CacheDriverChoice {
    return this.cache?.driver.name ?? "none";
  }

  /** One repair pass over every user's owed repairs (timer, repair route); now and then, expired idempotency keys and long-deleted tasks go too. */
  repairNow(): Promise<{ repaired: number; remaining: number }> {
    if (this.now() - this.lastKeyPurge >= KEY_PURGE_INTERVAL_MS) {
      this.lastKeyPurge = this.now();
      // Expired idempotency keys, and tasks deleted longer ago than they can be restored (their
      // tombstones expired long before: CACHE_TTL_SECONDS, far under 30 days).
      void Promise.all([
        this.db(() => queries.purgeIdempotencyKeys(this.database.db), { count: false }),
        this.db(() => queries.purgeDeletedTasks(this.database.db), { count: false }),
      ]).catch(() => {
        this.lastKeyPurge = 0;
      });
    }
    return this.ledger.pass();
  }

  /**
   * The cache for `userId`'s reads, once it can be trusted for them: after an outage, once a full
   * repair pass has read what other instances recorded meanwhile; and once every repair owed for
   * that user is done. Null means "use Postgres".
   */
  async usableCacheFor(userId: string): Promise<Cache | null> {
    const cache = this.cache;
    if (!cache || !(await this.settledAfterOutage(cache))) return null;
    if (!this.ledger.owes(userId)) return cache;
    await this.ledger.pass(userId).catch(() => undefined);
    return this.ledger.owes(userId) ? null : cache;
  }

  /** Whether cached auth values (sessions, API keys) may be trusted: as above, with the owed revocations. */
  async authCacheTrusted(): Promise<boolean> {
    const cache = this.cache;
    if (!cache || !(await this.settledAfterOutage(cache))) return false;
    if (!this.ledger.owesAuth()) return true;
    await this.ledger.pass().catch(() => undefined);
    return !this.ledger.owesAuth();
  }

  private async settledAfterOutage(cache: Cache): Promise<boolean> {
    if (!this.ledger.afterOutage) return true;
    // While the breaker is open the cache is unusable anyway; don't spend a Postgres read on it.
    if (cache.breakerState === "open") return false;
    await this.repairNow().catch(() => undefined);
    return !this.ledger.afterOutage;
  }

  /**
   * The user's cache epoch, read before any Postgres work whose result will be written to the
   * cache, so a flush or restart in between makes that write refuse itself. Null when the cache is
   * down.
   */
  async captureEpoch(userId: string): Promise<string | null> {
    const cache = this.cache;
    if (!cache) return null;
    const known = this.knownEpochs.get(userId);
    if (known) return known;
    try {
      const slot = cache.driver.forUser(userId);
      const epoch = await this.flights.do(`${userId}/epoch`, () => cache.run("epoch", () => slot.epoch(), `{u:${userId}}`));
      if (this.knownEpochs.size >= KNOWN_EPOCHS_MAX) this.knownEpochs.delete(this.knownEpochs.keys().next().value as string);
      this.knownEpochs.set(userId, epoch);
      return epoch;
    } catch {
      return null;
    }
  }

  noteResults(userId: string, results: PutResult[]) {
    for (const r of results) {
      if (r === "stale-epoch") this.knownEpochs.delete(userId);
      if (r === "refused") this.stats.casRefusals++;
    }
  }

  /** One user's tasks, Postgres and the cache side by side (the cache lab). */
  inspect(userId: string, ids: number[]): Promise<TaskCacheView[]> {
    return inspectTasks(this, userId, ids);
  }

  /**
   * The cache compared with Postgres, in bounded batches: one user's tasks (cost: that user's tasks
   * only), or (no user) every user's (a walk of the whole keyspace, with pauses between batches).
   */
  audit(userId?: string, options?: AuditOptions): Promise<CacheAuditReport> {
    return userId === undefined ? auditAll(this, options) : auditUser(this, userId, options);
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
    const cache = this.cache;
    const [db, cacheCheck] = await Promise.all([
      timed(() => this.database.ping()),
      cache ? timed(() => cache.driver.ping()) : Promise.resolve({ ok: true, latencyMs: null }),
    ]);
    return {
      status: !db.ok ? "down" : cacheCheck.ok && cache?.breakerState !== "open" ? "ok" : "degraded",
      db: { ...db, breaker: this.database.breakerState },
      cache: { driver: this.cacheDriverName, ...cacheCheck, breaker: cache?.breakerState ?? null },
    };
  }

  async close(): Promise<void> {
    clearInterval(this.repairTimer);
    this.labRelay?.close();
    for (const stop of this.unsubscribe.splice(0)) stop();
    await Promise.allSettled([this.cache?.close(), this.live?.close(), this.database.close()]);
  }

  /** Runs a query, turning driver errors into TaskErrors without leaking their text. */
  async db<T>(fn: () => Promise<T>, { count = true }: { count?: boolean } = {}): Promise<T> {
    if (count) this.stats.dbQueries++;
    const started = performance.now();
    try {
      const result = await fn();
      this.observer.onQuery?.((performance.now() - started) / 1000, "ok");
      return result;
    } catch (err) {
      this.observer.onQuery?.((performance.now() - started) / 1000, "error");
      const taskError = toTaskError(err);
      // An unavailable database is logged once per request, by the error boundary
      // (lib/http/publicError.ts), and once per outage, by its breaker.
      if (taskError.code === "internal_error") log.error("database query failed", { err });
      throw taskError;
    }
  }
}
