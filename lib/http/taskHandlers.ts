import "server-only";
import type { TaskPage, UserTaskStore, WriteCommand, WriteOutcome } from "../store/userTasks";
import { isTaskError, TaskError } from "../tasks/errors";
import {
  batchSchema,
  createTaskSchema,
  LIST_LIMIT_DEFAULT,
  PG_INT_MAX,
  listQuerySchema,
  taskIdSchema,
  updateTaskSchema,
  type Task,
} from "../tasks/schema";
import { createHash } from "node:crypto";
import { liveEventStream } from "../live/stream";
import { handle } from "./handle";
import { json, NO_STORE, parseWith, readJsonBody } from "./responses";

// The REST API's behaviour, kept out of app/api so tests can drive it with any store and any
// authentication. Route files only pass the process-wide one and call these. The caller is
// authenticated first: a request without a valid credential is a 401 whatever else is wrong with
// it, and nobody learns the API's validation rules, or gets a body read, without one.

/**
 * Who is calling: the caller's own task store, after authenticating the request (session cookie or
 * bearer API key). Throws a TaskError: 401 without a valid credential, 503 when that can't be
 * checked.
 */
export type TasksFor = (req: Request) => Promise<UserTaskStore>;

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

/**
 * A list page's JSON and its validator: the content itself, hashed. A client checking for changes
 * (polling where there are no live updates, as on Upstash, or the page after its event stream
 * connects) sends it back in If-None-Match and gets a bodiless 304 until something it would see
 * changes. The task page computes the same for the page it renders.
 */
export function listBody(page: Pick<TaskPage, "tasks" | "nextCursor" | "counts">): { body: string; etag: string } {
  const body = JSON.stringify({ tasks: page.tasks, nextCursor: page.nextCursor, counts: page.counts });
  return { body, etag: `"l${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
}

export function listTasks(tasksFor: TasksFor, req: Request): Promise<Response> {
  return handle(async () => {
    const tasks = await tasksFor(req);
    const query = parseWith(listQuerySchema, Object.fromEntries(new URL(req.url).searchParams));
    const page = await tasks.list({ limit: query.limit ?? LIST_LIMIT_DEFAULT, cursor: query.cursor, status: query.status, sort: query.sort });
    const { body, etag } = listBody(page);
    const headers = { ...NO_STORE, "content-type": "application/json", ETag: etag, "X-Cache": page.cache };
    if (ifNoneMatchHits(req, etag)) return new Response(null, { status: 304, headers });
    return new Response(body, { status: 200, headers });
  });
}

/**
 * GET /api/tasks/events: the caller's task changes, from every instance, as Server-Sent Events
 * (lib/live/stream.ts). 409 where the server has no live bus (Upstash: poll GET /api/tasks with
 * If-None-Match instead).
 */
export function taskEvents(tasksFor: TasksFor, req: Request, options: { heartbeatMs?: number } = {}): Promise<Response> {
  return handle(async () => {
    const tasks = await tasksFor(req);
    const bus = tasks.store.live;
    if (!bus) {
      throw new TaskError("conflict", "This server has no live updates (its cache is Upstash, which keeps no subscriptions): poll GET /api/tasks with If-None-Match instead.");
    }
    return liveEventStream(bus, tasks.userId, req.signal, {
      ...options,
      stillAuthorized: async () => {
        try {
          return (await tasksFor(req)).userId === tasks.userId;
        } catch (err) {
          if (isTaskError(err) && err.code === "unauthorized") return false;
          throw err;
        }
      },
    });
  });
}

/**
 * `Idempotency-Key`: absent → none; 1..255 printable ASCII characters → the key; anything else is
 * a 400 (before anything is read or written).
 */
function idempotencyKeyFrom(req: Request): string | undefined {
  const header = req.headers.get("idempotency-key");
  if (header === null) return undefined;
  const key = header.trim();
  if (!IDEMPOTENCY_KEY.test(key)) {
    const message = "Idempotency-Key must be 1 to 255 printable ASCII characters.";
    throw new TaskError("validation_failed", message, { issues: [{ path: "Idempotency-Key", message }] });
  }
  return key;
}

const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;

/** A write, once or replayed: the same status and body either way; a replay says so in a header. */
async function written(tasks: UserTaskStore, key: string | undefined, command: WriteCommand): Promise<WriteOutcome> {
  if (key !== undefined) return tasks.write(key, command);
  if (command.op === "create") return { status: 201, task: await tasks.create(command.input), replayed: false };
  if (command.op === "update") return { status: 200, task: await tasks.update(command), replayed: false };
  if (command.op !== "delete") throw new Error(`written() does not take ${command.op}`);
  await tasks.remove(command);
  return { status: 204, task: null, replayed: false };
}

function replayHeader(outcome: WriteOutcome): Record<string, string> {
  return outcome.replayed ? { "Idempotent-Replayed": "true" } : {};
}

export function createTask(tasksFor: TasksFor, req: Request): Promise<Response> {
  return handle(async () => {
    const tasks = await tasksFor(req);
    const key = idempotencyKeyFrom(req);
    const input = parseWith(createTaskSchema, await readJsonBody(req));
    const outcome = await written(tasks, key, { op: "create", input });
    const task = outcome.task as Task;
    return json(task, { status: 201, headers: { Location: `/api/tasks/${task.id}`, ETag: etagOf(task), ...replayHeader(outcome) } });
  });
}

export function getTask(tasksFor: TasksFor, req: Request, rawId: string): Promise<Response> {
  return handle(async () => {
    const tasks = await tasksFor(req);
    const id = parseId(rawId);
    const { task, cache } = await tasks.get(id);
    const etag = etagOf(task);
    if (ifNoneMatchHits(req, etag)) {
      return new Response(null, { status: 304, headers: { ETag: etag, "X-Cache": cache, "Cache-Control": "no-store" } });
    }
    return json(task, { headers: { ETag: etag, "X-Cache": cache } });
  });
}

export function updateTask(tasksFor: TasksFor, req: Request, rawId: string): Promise<Response> {
  return handle(async () => {
    const tasks = await tasksFor(req);
    const id = parseId(rawId);
    const key = idempotencyKeyFrom(req);
    const patch = parseWith(updateTaskSchema, await readJsonBody(req));
    const expectedVersion = expectedVersionFrom(req);
    if (expectedVersion === "never") throw preconditionFailed();
    const outcome = await written(tasks, key, { op: "update", id, patch, expectedVersion });
    const task = outcome.task as Task;
    return json(task, { headers: { ETag: etagOf(task), ...replayHeader(outcome) } });
  });
}

export function deleteTask(tasksFor: TasksFor, req: Request, rawId: string): Promise<Response> {
  return handle(async () => {
    const tasks = await tasksFor(req);
    const id = parseId(rawId);
    const key = idempotencyKeyFrom(req);
    const expectedVersion = expectedVersionFrom(req);
    if (expectedVersion === "never") throw preconditionFailed();
    const outcome = await written(tasks, key, { op: "delete", id, expectedVersion });
    return new Response(null, { status: 204, headers: { "Cache-Control": "no-store", ...replayHeader(outcome) } });
  });
}

/** POST /api/tasks/{id}/restore: undoes a delete; the same id at the next version. */
export function restoreTask(tasksFor: TasksFor, req: Request, rawId: string): Promise<Response> {
  return handle(async () => {
    const tasks = await tasksFor(req);
    const id = parseId(rawId);
    const key = idempotencyKeyFrom(req);
    const outcome = key !== undefined ? await tasks.write(key, { op: "restore", id }) : { task: await tasks.restore(id), replayed: false, status: 200 as const };
    const task = outcome.task as Task;
    return json(task, { headers: { ETag: etagOf(task), ...replayHeader(outcome) } });
  });
}

/** POST /api/tasks/batch: one operation on up to 500 of the caller's tasks, all or nothing. */
export function batchTasks(tasksFor: TasksFor, req: Request): Promise<Response> {
  return handle(async () => {
    const tasks = await tasksFor(req);
    const key = idempotencyKeyFrom(req);
    const input = parseWith(batchSchema, await readJsonBody(req));
    if (key !== undefined) {
      const outcome = await tasks.write(key, { op: "batch", batch: input.op, ids: [...new Set(input.ids)] });
      return json(outcome.batch, { headers: replayHeader(outcome) });
    }
    return json(await tasks.batch(input));
  });
}

function preconditionFailed() {
  return new TaskError("precondition_failed", 'If-Match must be "*" or an ETag returned by this API, like "v3".');
}
