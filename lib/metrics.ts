import "server-only";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CacheEventKind } from "./cacheEvents";
import type { BreakerState } from "./names";
import type { StoreObserver } from "./store/observer";
import type { TaskStore } from "./store/taskStore";

/**
 * Prometheus metrics for /api/metrics. One registry per process (kept on globalThis so dev reloads
 * don't register twice). The store reports to it through its observer (`metrics().observer`, given
 * to the process-wide store by createTaskStoreFromEnv); the gauges read that store at scrape time.
 */
type Metrics = { registry: Registry; httpDuration: Histogram<"method" | "route" | "status">; observer: StoreObserver };

const holder = globalThis as unknown as { __metrics?: Metrics };
const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, "half-open": 1, open: 2 };

function create(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "wt_" });
  /** The store whose breakers, ledger and statement counts the gauges read (the last one made with this observer). */
  let store: TaskStore | undefined;

  const cacheCalls = new Counter({
    name: "wt_cache_calls_total",
    help: "Cache calls by operation and outcome (rejected: refused at once by the open breaker).",
    labelNames: ["operation", "outcome"],
    registers: [registry],
  });
  const cacheLatency = new Histogram({
    name: "wt_cache_call_duration_seconds",
    help: "Cache call latency by operation.",
    labelNames: ["operation"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const dbLatency = new Histogram({
    name: "wt_db_query_duration_seconds",
    help: "Postgres statement latency by outcome.",
    labelNames: ["outcome"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });

  // Counters of the store's cache events, by kind.
  const eventCounters = new Map<CacheEventKind, { counter: Counter<string>; label?: { [name: string]: string } }>();
  const fromEvents = (name: string, help: string, kinds: CacheEventKind[], label?: string) => {
    const counter = new Counter({ name, help, labelNames: label ? [label] : [], registers: [registry] });
    for (const kind of kinds) eventCounters.set(kind, { counter, label: label ? { [label]: kind } : undefined });
  };
  fromEvents("wt_cache_reads_total", "Reads by how they were served.", ["hit", "miss", "bypass"], "outcome");
  fromEvents("wt_cache_writes_total", "Cache writes by result.", ["write-through", "fill", "tombstone"], "kind");
  fromEvents("wt_cache_cas_refusals_total", "Compare-and-set writes refused because the cache held the same or a newer version.", ["refused"]);
  fromEvents("wt_cache_stale_epoch_total", "Writes refused because the cache was flushed or restarted since they began.", ["stale-epoch"]);
  fromEvents("wt_cache_repairs_recorded_total", "Write-throughs that failed and were recorded for repair.", ["repair-recorded"]);
  fromEvents("wt_cache_repairs_total", "Cache entries repaired from Postgres.", ["repair"]);
  fromEvents("wt_cache_breaker_transitions_total", "Circuit breaker state changes.", ["breaker"]);

  new Gauge({
    name: "wt_cache_breaker_state",
    help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
    registers: [registry],
    collect() {
      const state = store?.cache?.breakerState;
      this.set(state ? BREAKER_VALUE[state] : 0);
    },
  });
  new Gauge({
    name: "wt_db_breaker_state",
    help: "Database circuit breaker state: 0 closed, 1 half-open, 2 open (always 0 on PGlite, which has none).",
    registers: [registry],
    collect() {
      const state = store?.database.breakerState;
      this.set(state ? BREAKER_VALUE[state] : 0);
    },
  });
  // Read off the breakers' own counts, so a bench or a dashboard can tell "Redis was slow" (timeouts,
  // openings) from everything else that sends a read to Postgres.
  const breakers = () => ({ cache: store?.cache?.breaker.stats, db: store?.database.breakerStats ?? undefined });
  new Counter({
    name: "wt_breaker_timeouts_total",
    help: "Calls that timed out (the dependency did not answer within its timeout, with the event loop free to read it), by breaker.",
    labelNames: ["breaker"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, stats] of Object.entries(breakers())) if (stats) this.inc({ breaker: name }, stats.timeouts);
    },
  });
  new Counter({
    name: "wt_breaker_openings_total",
    help: "Times a circuit breaker opened, by breaker.",
    labelNames: ["breaker"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, stats] of Object.entries(breakers())) if (stats) this.inc({ breaker: name }, stats.opened);
    },
  });
  new Gauge({
    name: "wt_cache_repairs_pending",
    help: "Repairs this instance owes (while non-zero it reads Postgres only).",
    registers: [registry],
    collect() {
      this.set(store?.pendingRepairCount ?? 0);
    },
  });
  new Counter({
    name: "wt_db_statements_total",
    help: "Postgres statements this process sent, by origin: requests (the task store, better-auth, API keys) or the repair passes (a timer).",
    labelNames: ["origin"],
    registers: [registry],
    collect() {
      this.reset();
      if (!store) return;
      const background = store.ledger.passStatements;
      this.inc({ origin: "repair" }, background);
      this.inc({ origin: "request" }, Math.max(0, store.database.statements.count - background));
    },
  });
  new Counter({
    name: "wt_db_transactions_total",
    help: "Postgres transactions this process began (a batch is one).",
    registers: [registry],
    collect() {
      this.reset();
      if (store) this.inc(store.database.statements.transactions);
    },
  });
  const httpDuration = new Histogram({
    name: "wt_http_request_duration_seconds",
    help: "HTTP request duration by method, route and status.",
    labelNames: ["method", "route", "status"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  const observer: StoreObserver = {
    onStoreCreated(created) {
      store = created;
      // Every kind shows from the start, at 0, rather than appearing with its first event.
      for (const { counter, label } of eventCounters.values()) {
        if (label) counter.inc(label, 0);
        else counter.inc(0);
      }
    },
    onQuery(seconds, outcome) {
      dbLatency.observe({ outcome }, seconds);
    },
    onCacheCall(operation, outcome, seconds) {
      cacheCalls.inc({ operation, outcome });
      if (outcome !== "rejected") cacheLatency.observe({ operation }, seconds);
    },
    onCacheEvent(kind) {
      const target = eventCounters.get(kind);
      if (!target) return;
      if (target.label) target.counter.inc(target.label);
      else target.counter.inc();
    },
  };
  return { registry, httpDuration, observer };
}

export function metrics(): Metrics {
  return (holder.__metrics ??= create());
}
