import { z } from "zod";
import { env, resolveCacheDriver } from "../env";
import { attachStore, metrics } from "../metrics";
import { TaskError } from "../tasks/errors";
import { PG_INT_MAX } from "../tasks/schema";
import { json, parseWith } from "./responses";
import { handle, type StoreSource } from "./taskHandlers";

// Operational endpoints: health, metrics, and the cache's audit, repair and state (the task
// endpoints are in ./taskHandlers).

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

/** GET /api/cache/audit: the cache compared with Postgres (200 either way; `ok` says whether they agree). */
export function auditCache(getStore: StoreSource): Promise<Response> {
  return handle(async () => {
    const report = await (await getStore()).audit();
    return json(report);
  });
}

/**
 * GET or POST /api/cache/repair: one repair pass, for schedulers on serverless deploys (long-lived
 * servers also repair on a timer). With CRON_SECRET set, the caller must send it as a bearer token.
 */
export function repairCache(getStore: StoreSource, req: Request, secret: string | undefined): Promise<Response> {
  return handle(async () => {
    if (secret !== undefined && req.headers.get("authorization") !== `Bearer ${secret}`) {
      throw new TaskError("unauthorized", "Send the CRON_SECRET as 'Authorization: Bearer <secret>'.");
    }
    return json(await (await getStore()).repairNow());
  });
}

const cacheStateQuerySchema = z.strictObject({
  ids: z
    .string()
    .regex(/^([1-9][0-9]{0,9})(,[1-9][0-9]{0,9}){0,199}$/, { error: "ids must be up to 200 task ids separated by commas." })
    .transform((s) => [...new Set(s.split(",").map(Number))])
    .refine((ids) => ids.every((id) => id <= PG_INT_MAX), { error: "ids must be task ids." })
    .optional(),
  after: z
    .string()
    .regex(/^(0|[1-9][0-9]{0,15})$/, { error: "after must be an event number." })
    .transform(Number)
    .optional(),
});

/**
 * GET /api/cache/state?ids=1,2&after=N: what the cache lab page shows: the cache and Postgres side
 * by side for those tasks, the hit ratio since start, the breaker, and the cache events after N.
 */
export function cacheState(getStore: StoreSource, req: Request): Promise<Response> {
  return handle(async () => {
    const query = parseWith(cacheStateQuerySchema, Object.fromEntries(new URL(req.url).searchParams));
    const store = await getStore();
    return json({
      driver: store.cacheDriverName,
      breaker: store.cache?.breakerState ?? null,
      hitRatio: store.events.hitRatio,
      counts: store.events.counts,
      pendingRepairs: store.pendingRepairCount,
      tasks: query.ids ? await store.inspect(query.ids) : [],
      events: store.events.recent(query.after ?? 0),
    });
  });
}
