import "server-only";
import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Principal } from "../auth";
import { checkOrigin } from "../auth/origin";
import { env, resolveCacheDriver } from "../env";
import { metrics } from "../metrics";
import type { TaskStore } from "../store/taskStore";
import { TaskError } from "../tasks/errors";
import { PG_INT_MAX } from "../tasks/schema";
import { handle } from "./handle";
import { json, parseWith } from "./responses";

// Operational endpoints: health, metrics, and the cache's audit, repair and state (the task
// endpoints are in ./taskHandlers). Who may call what:
//   /api/health         anyone; says nothing about data
//   /api/metrics        anyone, or `Bearer $METRICS_TOKEN` when that is set
//   /api/cache/state    a signed-in user (cookie or API key): their own tasks and events
//   /api/cache/audit    a signed-in user: their own tasks; ?scope=all: an admin or `Bearer $CRON_SECRET`
//   /api/cache/repair   POST: an admin or `Bearer $CRON_SECRET`; GET: only the bearer (cron schedulers)
// An admin is a person signed in (session cookie) with an email in ADMIN_EMAILS; an API key never is.

export type OpsContext = {
  store: () => Promise<TaskStore>;
  /** The caller, from a session cookie or an API key; null when anonymous. */
  principal: (req: Request) => Promise<Principal | null>;
  cronSecret?: string;
  metricsToken?: string;
  adminEmails: string[];
};

/** The context the routes use: the process-wide store and auth, and the env's secrets. */
export async function defaultOpsContext(): Promise<OpsContext> {
  const [{ getTaskStore }, { authenticate }] = await Promise.all([import("../taskStore"), import("../auth")]);
  return {
    store: getTaskStore,
    principal: (req) => authenticate(req),
    cronSecret: env.CRON_SECRET,
    metricsToken: env.METRICS_TOKEN,
    adminEmails: env.ADMIN_EMAILS,
  };
}

/** Compared as digests, so neither the secret's bytes nor its length show in the timing. */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function bearer(req: Request): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "");
  return match ? (match[1] as string) : null;
}

/** A scheduler with the CRON_SECRET, a user (admin or not), or nobody. */
type OpsCaller = { kind: "scheduler" } | { kind: "user"; userId: string; admin: boolean; principal: Principal } | null;

async function callerOf(ctx: OpsContext, req: Request): Promise<OpsCaller> {
  const token = bearer(req);
  if (token !== null && ctx.cronSecret !== undefined && sameSecret(token, ctx.cronSecret)) return { kind: "scheduler" };
  const principal = await ctx.principal(req);
  if (!principal) return null;
  // Admin power comes with a signed-in person, never with an API key: a key is a long-lived
  // secret handed to a program, and a leaked one must not reach every user's data.
  const email = principal.via === "session" ? principal.email : undefined;
  return { kind: "user", userId: principal.userId, admin: email !== undefined && ctx.adminEmails.includes(email.toLowerCase()), principal };
}

function unauthorized(what: string) {
  return new TaskError("unauthorized", what);
}

function forbidden() {
  return new TaskError("forbidden", "This needs an admin account (ADMIN_EMAILS) or the CRON_SECRET.");
}

/**
 * GET /api/health: 200 `{ status: "ok" | "degraded", db, cache }` while Postgres answers (a cache
 * outage is "degraded": the app still works), 503 with the same shape when Postgres does not.
 */
export async function health(getStore: () => Promise<TaskStore>): Promise<Response> {
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
        db: { ok: false, latencyMs: null, breaker: null },
        cache: { driver: resolveCacheDriver(env), ok: false, latencyMs: null, breaker: null },
      },
      { status: 503, headers },
    );
  }
}

/** GET /api/metrics: Prometheus text format; `Bearer $METRICS_TOKEN` when that is set. */
export function prometheusMetrics(ctx: Pick<OpsContext, "store" | "metricsToken">, req: Request): Promise<Response> {
  return handle(async () => {
    if (ctx.metricsToken !== undefined) {
      const token = bearer(req);
      if (token === null || !sameSecret(token, ctx.metricsToken)) throw unauthorized("Send the METRICS_TOKEN as 'Authorization: Bearer <token>'.");
    }
    // Opens the process-wide store if it is not open yet (it reports to this registry). Metrics
    // still answer while the database is down (HTTP and process metrics).
    await ctx.store().catch(() => undefined);
    const { registry } = metrics();
    return new Response(await registry.metrics(), { headers: { "Content-Type": registry.contentType, "Cache-Control": "no-store" } });
  });
}

const auditQuerySchema = z.strictObject({
  scope: z.enum(["mine", "all"], { error: "scope must be mine or all." }).optional(),
});

/**
 * GET /api/cache/audit: the cache compared with Postgres (200 either way; `ok` says whether they
 * agree). A user's own tasks; `?scope=all` (or the CRON_SECRET) the whole store, in bounded batches.
 */
export function auditCache(ctx: OpsContext, req: Request): Promise<Response> {
  return handle(async () => {
    const caller = await callerOf(ctx, req);
    if (!caller) throw unauthorized("Sign in to audit your tasks' cache, or send the CRON_SECRET as a bearer token.");
    const query = parseWith(auditQuerySchema, Object.fromEntries(new URL(req.url).searchParams));
    const store = await ctx.store();
    if (caller.kind === "user" && query.scope !== "all") return json(await store.audit(caller.userId));
    if (caller.kind === "user" && !caller.admin) throw forbidden();
    return json(await store.audit(undefined, { batchSize: 200, pauseMs: 2 }));
  });
}

/**
 * POST /api/cache/repair (an admin, or the CRON_SECRET), or GET with the CRON_SECRET (schedulers
 * that can only GET, such as Vercel Cron): one repair pass over every user's owed repairs.
 */
export function repairCache(ctx: OpsContext, req: Request): Promise<Response> {
  return handle(async () => {
    const caller = await callerOf(ctx, req);
    if (!caller) throw unauthorized("Send the CRON_SECRET as 'Authorization: Bearer <secret>', or sign in as an admin and POST.");
    if (caller.kind === "user" && (req.method === "GET" || !caller.admin)) {
      throw new TaskError(
        "forbidden",
        req.method === "GET" ? "GET runs a repair only for schedulers with the CRON_SECRET; admins POST." : "This needs an admin account (ADMIN_EMAILS) or the CRON_SECRET.",
      );
    }
    if (caller.kind === "user") checkOrigin(req, caller.principal);
    return json(await (await ctx.store()).repairNow());
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
 * GET /api/cache/state?ids=1,2&after=N: what the cache lab page shows, for the caller only: the
 * cache and Postgres side by side for those of the caller's tasks, the caller's hit ratio and
 * counters, the repairs this instance owes the caller, the breaker, and the caller's cache events
 * after N. Nothing about other users: process-wide numbers are in /api/metrics.
 */
export function cacheState(ctx: Pick<OpsContext, "store" | "principal">, req: Request): Promise<Response> {
  return handle(async () => {
    const principal = await ctx.principal(req);
    if (!principal) throw unauthorized("Sign in to see your tasks in the cache.");
    const query = parseWith(cacheStateQuerySchema, Object.fromEntries(new URL(req.url).searchParams));
    const store = await ctx.store();
    // The lab is open: every instance's events of this user come here for a while (not awaited:
    // the lab's answer never waits for the bus).
    void store.labRelay?.watch(principal.userId);
    const mine = store.events.forUser(principal.userId);
    return json({
      driver: store.cacheDriverName,
      instance: store.labRelay?.instance ?? null,
      breaker: store.cache?.breakerState ?? null,
      hitRatio: mine.hitRatio,
      counts: mine.counts,
      pendingRepairs: store.ledger.countFor(principal.userId),
      tasks: query.ids ? await store.inspect(principal.userId, query.ids) : [],
      events: mine.recent(query.after ?? 0),
    });
  });
}
