import { env, resolveCacheDriver } from "../env";
import { attachStore, metrics } from "../metrics";
import type { StoreSource } from "./taskHandlers";

/**
 * GET /api/health: 200 `{ status: "ok" | "degraded", db, cache }` while Postgres answers (a cache
 * outage is "degraded": the app still works), 503 with the same shape when Postgres does not.
 */
export async function health(getStore: StoreSource): Promise<Response> {
  const headers = { "Cache-Control": "no-store" };
  try {
    const store = await getStore();
    const report = await store.health(Math.min(env.DATABASE_TIMEOUT_MS, 2000));
    return Response.json(report, { status: report.status === "down" ? 503 : 200, headers });
  } catch {
    // The store could not even open: Postgres is unreachable (or was at start-up).
    return Response.json(
      {
        status: "down",
        db: { ok: false, latencyMs: null },
        cache: { driver: resolveCacheDriver(env), ok: false, latencyMs: null, breaker: null },
      },
      { status: 503, headers },
    );
  }
}

/** GET /api/metrics: Prometheus text format. */
export async function prometheusMetrics(getStore: StoreSource): Promise<Response> {
  try {
    attachStore(await getStore());
  } catch {
    // Metrics still answer while the database is down (HTTP and process metrics).
  }
  const { registry } = metrics();
  return new Response(await registry.metrics(), { headers: { "Content-Type": registry.contentType, "Cache-Control": "no-store" } });
}
