import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { observeCacheCalls } from "./cache";
import { observeQueries, type TaskStore } from "./taskStore";

/**
 * Prometheus metrics for /api/metrics. One registry per process (kept on globalThis so dev reloads
 * don't register twice). Store counters are read at scrape time from the store's event log.
 */
type Metrics = { registry: Registry; httpDuration: Histogram<"method" | "route" | "status"> };

const holder = globalThis as unknown as { __metrics?: Metrics; __metricsStore?: TaskStore };
const BREAKER_VALUE = { closed: 0, "half-open": 1, open: 2 } as const;

function create(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "wt_" });
  const store = () => holder.__metricsStore;

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
  observeCacheCalls((operation, outcome, seconds) => {
    cacheCalls.inc({ operation, outcome });
    if (outcome !== "rejected") cacheLatency.observe({ operation }, seconds);
  });

  const dbLatency = new Histogram({
    name: "wt_db_query_duration_seconds",
    help: "Postgres statement latency by outcome.",
    labelNames: ["outcome"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  observeQueries((seconds, outcome) => dbLatency.observe({ outcome }, seconds));

  // Counters owned by the store's event log, copied at scrape time.
  const fromEvents = (name: string, help: string, kinds: Array<keyof TaskStore["events"]["counts"]>, label?: string) =>
    new Counter({
      name,
      help,
      labelNames: label ? [label] : [],
      registers: [registry],
      collect() {
        this.reset();
        const counts = store()?.events.counts;
        if (!counts) return;
        for (const kind of kinds) {
          if (label) this.inc({ [label]: kind }, counts[kind]);
          else this.inc(counts[kind]);
        }
      },
    });
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
      const state = store()?.cache?.breakerState;
      this.set(state ? BREAKER_VALUE[state] : 0);
    },
  });
  new Gauge({
    name: "wt_cache_repairs_pending",
    help: "Repairs this instance owes (while non-zero it reads Postgres only).",
    registers: [registry],
    collect() {
      this.set(store()?.pendingRepairCount ?? 0);
    },
  });
  new Counter({
    name: "wt_db_statements_total",
    help: "Postgres statements this process sent, by origin: requests (the task store, better-auth, API keys) or the repair passes (a timer).",
    labelNames: ["origin"],
    registers: [registry],
    collect() {
      this.reset();
      const s = store();
      if (!s) return;
      const background = s.ledger.passStatements;
      this.inc({ origin: "repair" }, background);
      this.inc({ origin: "request" }, Math.max(0, s.database.statements.count - background));
    },
  });
  const httpDuration = new Histogram({
    name: "wt_http_request_duration_seconds",
    help: "HTTP request duration by method, route and status.",
    labelNames: ["method", "route", "status"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return { registry, httpDuration };
}

export function metrics(): Metrics {
  return (holder.__metrics ??= create());
}

/** Points the store-derived metrics at the process-wide store. */
export function attachStore(store: TaskStore) {
  holder.__metricsStore = store;
  metrics();
}
