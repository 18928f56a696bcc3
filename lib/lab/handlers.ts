import "server-only";
import { z } from "zod";
import type { Principal } from "../auth";
import { checkOrigin } from "../auth/origin";
import { handle } from "../http/handle";
import { json, parseWith, readJsonBody } from "../http/responses";
import type { TaskStore } from "../store/taskStore";
import { TaskError } from "../tasks/errors";
import { PG_INT_MAX } from "../tasks/schema";
import { evictTask, flushUserCache } from "./actions";
import { runRaceDemo, type RaceDemoResult } from "./race";

// The cache lab's write routes, kept out of app/api so tests can drive them with any store and any
// authentication (as lib/http does for the REST API):
//   POST /api/cache/evict  { id }        evict one of your tasks' entries
//   POST /api/cache/flush  { ids? }      flush your cache slot (every id you have, plus `ids`)
//   POST /api/cache/race                 run the race demo (one at a time per user, then a cooldown)
// Each needs a signed-in user (cookie or API key): 401 before anything else is looked at. They are
// writes: a cookie-authenticated one from another site is a 403, and each counts against the
// per-user write limit (429). Bad input is a 400 (415 for a body that isn't JSON), no cache
// configured a 409, a cache that doesn't answer a 503.

export type LabContext = {
  store: () => Promise<TaskStore>;
  /** The caller, from a session cookie or an API key; null when anonymous. */
  principal: (req: Request) => Promise<Principal | null>;
  /** Counts the request against the per-user write limit (throws 429 past it). */
  limitWrite: (req: Request, principal: Principal) => Promise<void>;
  races: RaceGate;
};

/** The context the routes use: the process-wide store, auth and rate limiter. */
export async function defaultLabContext(): Promise<LabContext> {
  const [{ getTaskStore }, { authenticate, getRateLimiter, limitWrites }] = await Promise.all([import("../taskStore"), import("../auth")]);
  return {
    store: getTaskStore,
    principal: (req) => authenticate(req),
    limitWrite: async (req, principal) => limitWrites(req, principal, await getRateLimiter()),
    races: processRaces,
  };
}

/**
 * One race demo per user at a time (a second gets 409 while it runs) and a cooldown after each
 * (429 with Retry-After): a demo is 320 Postgres writes. Per process: with several instances a
 * user could run one on each, which the per-user write limit still bounds.
 */
export class RaceGate {
  private readonly running = new Set<string>();
  private readonly finishedAt = new Map<string, number>();

  constructor(
    readonly cooldownMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  async run<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    if (this.running.has(userId)) throw new TaskError("conflict", "A race demo of yours is already running. Wait for its result.");
    const last = this.finishedAt.get(userId);
    const waitMs = last === undefined ? 0 : last + this.cooldownMs - this.now();
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      throw new TaskError("rate_limited", `You ran the race demo a moment ago. Run it again in ${seconds} s.`, { retryAfterSeconds: seconds });
    }
    this.running.add(userId);
    try {
      return await fn();
    } finally {
      this.running.delete(userId);
      this.finishedAt.set(userId, this.now());
      // Bounded: forget users whose cooldown is over once there are many.
      if (this.finishedAt.size > 10_000) {
        const cutoff = this.now() - this.cooldownMs;
        for (const [user, at] of this.finishedAt) if (at < cutoff) this.finishedAt.delete(user);
      }
    }
  }
}

const processRaces = new RaceGate();

const taskId = z
  .number({ error: "id must be a task id (a positive integer)." })
  .int({ error: "id must be a task id (a positive integer)." })
  .min(1, { error: "id must be a task id (a positive integer)." })
  .max(PG_INT_MAX, { error: "id must be a task id (a positive integer)." });

const evictBodySchema = z.strictObject({ id: taskId }, { error: (iss) => (iss.code === "unrecognized_keys" ? undefined : "Body must be a JSON object.") });

/** The ids the page shows: at most as many as /api/cache/state takes. */
const SHOWN_IDS_MAX = 200;

const flushBodySchema = z.strictObject(
  { ids: z.array(taskId, { error: "ids must be an array of task ids." }).max(SHOWN_IDS_MAX, { error: `ids must hold at most ${SHOWN_IDS_MAX} task ids.` }).optional() },
  { error: (iss) => (iss.code === "unrecognized_keys" ? undefined : "Body must be a JSON object.") },
);

/** The signed-in caller of a lab write: 401 when anonymous, 403 from another site, 429 past the write limit. */
async function writer(ctx: LabContext, req: Request, what: string): Promise<Principal> {
  const principal = await ctx.principal(req);
  if (!principal) throw new TaskError("unauthorized", `Sign in to ${what}.`);
  checkOrigin(req, principal);
  await ctx.limitWrite(req, principal);
  return principal;
}

/** POST /api/cache/evict `{ id }` → 200 `{ id, evicted }`. */
export function evictRoute(ctx: LabContext, req: Request): Promise<Response> {
  return handle(async () => {
    const principal = await writer(ctx, req, "evict your tasks from the cache");
    const { id } = parseWith(evictBodySchema, await readJsonBody(req));
    return json(await evictTask(await ctx.store(), principal.userId, id));
  });
}

/** POST /api/cache/flush `{ ids? }` (or no body) → 200 `{ flushed: true, ids }`. */
export function flushRoute(ctx: LabContext, req: Request): Promise<Response> {
  return handle(async () => {
    const principal = await writer(ctx, req, "flush your cache");
    const body = req.body === null ? {} : await readJsonBody(req);
    const { ids } = parseWith(flushBodySchema, body);
    const { ids: count } = await flushUserCache(await ctx.store(), principal.userId, ids);
    return json({ flushed: true, ids: count });
  });
}

/** POST /api/cache/race → 200 RaceDemoResult. 409 while one of yours runs, 429 just after one. */
export function raceRoute(ctx: LabContext, req: Request): Promise<Response> {
  return handle(async () => {
    const principal = await writer(ctx, req, "run the race demo");
    const store = await ctx.store();
    const result: RaceDemoResult = await ctx.races.run(principal.userId, () => runRaceDemo(store, principal.userId));
    return json(result);
  });
}
