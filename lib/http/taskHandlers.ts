import { z } from "zod";
import type { TaskStore } from "../taskStore";
import { TaskError } from "../tasks/errors";
import {
  createTaskSchema,
  LIST_LIMIT_DEFAULT,
  PG_INT_MAX,
  listQuerySchema,
  taskIdSchema,
  updateTaskSchema,
  type Task,
} from "../tasks/schema";
import { errorResponse, json, parseWith, readJsonBody } from "./responses";

// The REST API's behaviour, kept out of app/api so tests can drive it with any store. Route files
// only pick the process-wide store and call these. The store is asked for only after the request
// parsed, so bad input is a 400 even while the database is down.
export type StoreSource = () => Promise<TaskStore>;

export function etagOf(task: Pick<Task, "version">): string {
  return `"v${task.version}"`;
}

function parseId(raw: string): number {
  return parseWith(taskIdSchema, raw, "invalid_id");
}

/**
 * `If-Match`: absent or `*` → no condition; `"vN"` → version N; anything else, including a weak
 * ETag (If-Match uses strong comparison, RFC 9110 §13.1.1), can never match.
 */
function expectedVersionFrom(req: Request): number | undefined | "never" {
  const header = req.headers.get("if-match");
  if (header === null || header.trim() === "*") return undefined;
  const match = /^\s*"v([1-9][0-9]{0,9})"\s*$/.exec(header);
  const version = match ? Number(match[1]) : NaN;
  // A version past Postgres' integer range can't be current; don't hand it to the query.
  return version <= PG_INT_MAX ? version : "never";
}

function ifNoneMatchHits(req: Request, etag: string): boolean {
  const header = req.headers.get("if-none-match");
  if (!header) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag);
}

async function handle(fn: () => Promise<Response>): Promise<Response> {
  try {
    return await fn();
  } catch (err) {
    return errorResponse(err);
  }
}

export function listTasks(getStore: StoreSource, req: Request): Promise<Response> {
  return handle(async () => {
    const query = parseWith(listQuerySchema, Object.fromEntries(new URL(req.url).searchParams));
    const page = await (await getStore()).list({ limit: query.limit ?? LIST_LIMIT_DEFAULT, cursor: query.cursor });
    return json({ tasks: page.tasks, nextCursor: page.nextCursor }, { headers: { "X-Cache": page.cache } });
  });
}

export function createTask(getStore: StoreSource, req: Request): Promise<Response> {
  return handle(async () => {
    const input = parseWith(createTaskSchema, await readJsonBody(req));
    const task = await (await getStore()).create(input);
    return json(task, { status: 201, headers: { Location: `/api/tasks/${task.id}`, ETag: etagOf(task) } });
  });
}

export function getTask(getStore: StoreSource, req: Request, rawId: string): Promise<Response> {
  return handle(async () => {
    const id = parseId(rawId);
    const { task, cache } = await (await getStore()).get(id);
    const etag = etagOf(task);
    if (ifNoneMatchHits(req, etag)) {
      return new Response(null, { status: 304, headers: { ETag: etag, "X-Cache": cache, "Cache-Control": "no-store" } });
    }
    return json(task, { headers: { ETag: etag, "X-Cache": cache } });
  });
}

export function updateTask(getStore: StoreSource, req: Request, rawId: string): Promise<Response> {
  return handle(async () => {
    const id = parseId(rawId);
    const patch = parseWith(updateTaskSchema, await readJsonBody(req));
    const expectedVersion = expectedVersionFrom(req);
    if (expectedVersion === "never") throw preconditionFailed();
    const task = await (await getStore()).update({ id, patch, expectedVersion });
    return json(task, { headers: { ETag: etagOf(task) } });
  });
}

export function deleteTask(getStore: StoreSource, req: Request, rawId: string): Promise<Response> {
  return handle(async () => {
    const id = parseId(rawId);
    const expectedVersion = expectedVersionFrom(req);
    if (expectedVersion === "never") throw preconditionFailed();
    await (await getStore()).remove({ id, expectedVersion });
    return new Response(null, { status: 204, headers: { "Cache-Control": "no-store" } });
  });
}

function preconditionFailed() {
  return new TaskError("precondition_failed", 'If-Match must be "*" or an ETag returned by this API, like "v3".');
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
