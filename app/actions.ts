"use server";

import { headers } from "next/headers";
import { z } from "zod";
import { actionTasks } from "@/lib/auth";
import { publicError, publicErrorBody, type PublicError } from "@/lib/http/publicError";
import { issuesOf } from "@/lib/http/responses";
import {
  LIST_LIMIT_DEFAULT,
  PG_INT_MAX,
  TASK_SORTS,
  TASK_STATUSES,
  batchSchema,
  createTaskSchema,
  listQuerySchema,
  updateTaskSchema,
  type Task,
  type TaskCounts,
} from "@/lib/tasks/schema";

/*
 * Server actions for the page. Every action takes `unknown` and parses it again with the same zod
 * schemas the form uses: the client is never trusted. Every action returns a plain, serialisable
 * result; errors go through the same boundary as the API's (lib/http/publicError.ts): logged once,
 * mapped to the public `{ code, message, issues? }` shape, driver text never reaching the browser.
 */

export type ActionError = PublicError;
export type ActionFailure = { ok: false; error: ActionError };
export type TaskResult = { ok: true; task: Task } | ActionFailure;
export type DeleteResult = { ok: true } | ActionFailure;
export type ListResult = { ok: true; tasks: Task[]; nextCursor: string | null; counts: TaskCounts } | ActionFailure;
/** complete, reopen and restore answer with the tasks as they now are; delete with the ids deleted. */
export type BatchResult = { ok: true; tasks: Task[] } | { ok: true; ids: number[] } | ActionFailure;

const idSchema = z
  .number({ error: "Task id must be a positive integer." })
  .int({ error: "Task id must be a positive integer." })
  .min(1, { error: "Task id must be a positive integer." })
  .max(PG_INT_MAX, { error: "Task id is out of range." });

const versionSchema = z
  .number({ error: "expectedVersion must be a non-negative integer." })
  .int({ error: "expectedVersion must be a non-negative integer." })
  .min(0, { error: "expectedVersion must be a non-negative integer." })
  .max(PG_INT_MAX, { error: "expectedVersion must be a non-negative integer." });

const updateInputSchema = z.strictObject({
  id: idSchema,
  patch: updateTaskSchema,
  expectedVersion: versionSchema.optional(),
});

const deleteInputSchema = z.strictObject({
  id: idSchema,
  expectedVersion: versionSchema.optional(),
});

/**
 * One create submission's idempotency key (the page makes a UUID, and sends the same one again
 * when it retries that submission): printable ASCII without spaces, as an HTTP header value could carry.
 */
const idempotencyKeyInputSchema = z.strictObject({
  idempotencyKey: z
    .string({ error: "idempotencyKey must be 1 to 255 printable ASCII characters." })
    .regex(/^[\x21-\x7e]{1,255}$/, { error: "idempotencyKey must be 1 to 255 printable ASCII characters." })
    .optional(),
});

const listInputSchema = z.strictObject({
  cursor: z.string({ error: "cursor must be a value returned as nextCursor." }).nullable().optional(),
  status: z.enum(TASK_STATUSES, { error: "status must be all, open or done." }).optional(),
  sort: z.enum(TASK_SORTS, { error: "sort must be new or due." }).optional(),
});

function validationFailure(error: z.ZodError): ActionFailure {
  const issues = issuesOf(error);
  const idIssue = issues.find((i) => i.path === "id");
  if (idIssue) return { ok: false, error: { code: "invalid_id", message: idIssue.message } };
  return {
    ok: false,
    error: { code: "validation_failed", message: issues[0]?.message ?? "Invalid input.", issues },
  };
}

function failure(err: unknown, action: string): ActionFailure {
  return { ok: false, error: publicErrorBody(publicError(err, `action ${action}`)) };
}

/**
 * The signed-in user's own tasks, the session read from the request's cookie like any API
 * request's. A write counts against the per-user write limit, as through the API; past it the
 * action returns `rate_limited`. No session: `unauthorized`, and the page sends the person to sign in.
 */
async function myTasks(access: "read" | "write") {
  return actionTasks(await headers(), access);
}

/** Copies only the public fields, so nothing else the store might attach crosses to the client. */
function plainTask(task: Task): Task {
  return {
    id: task.id,
    title: task.title,
    done: task.done,
    version: task.version,
    dueOn: task.dueOn ?? null,
    createdAt: task.createdAt,
    updatedAt: task.updatedAt,
  };
}

/**
 * One page of a view: `status` all | open | done, `sort` new (newest first) | due (by due date,
 * undated last); `cursor` the nextCursor of the page before. `counts` are the user's whole live
 * counts, whatever the view.
 */
export async function listTasksAction(input: unknown): Promise<ListResult> {
  const parsed = listInputSchema.safeParse(input ?? {});
  if (!parsed.success) return validationFailure(parsed.error);
  const { cursor, status, sort } = parsed.data;
  const query = listQuerySchema.safeParse({
    ...(cursor == null ? {} : { cursor }),
    ...(status === undefined ? {} : { status }),
    ...(sort === undefined ? {} : { sort }),
  });
  if (!query.success) return validationFailure(query.error);
  try {
    const tasks = await myTasks("read");
    const page = await tasks.list({ limit: LIST_LIMIT_DEFAULT, cursor: query.data.cursor, status: query.data.status, sort: query.data.sort });
    return { ok: true, tasks: page.tasks.map(plainTask), nextCursor: page.nextCursor, counts: plainCounts(page.counts) };
  } catch (err) {
    return failure(err, "listTasks");
  }
}

function plainCounts(counts: TaskCounts): TaskCounts {
  return { all: counts.all, open: counts.open, done: counts.done };
}

/**
 * One operation on several of the caller's own tasks, all or nothing: complete, reopen, delete or
 * restore (Mark all done, Clear completed, and their Undo). `idempotencyKey`: the same for every
 * retry of one batch, so a retry never applies it twice.
 */
export async function batchTasksAction(input: unknown, idempotencyKey?: unknown): Promise<BatchResult> {
  const parsed = batchSchema.safeParse(input);
  if (!parsed.success) return validationFailure(parsed.error);
  const key = idempotencyKeyInputSchema.safeParse({ idempotencyKey });
  if (!key.success) return validationFailure(key.error);
  try {
    const tasks = await myTasks("write");
    const result = await tasks.batch(parsed.data, { idempotencyKey: key.data.idempotencyKey });
    return "tasks" in result ? { ok: true, tasks: result.tasks.map(plainTask) } : { ok: true, ids: [...result.ids] };
  } catch (err) {
    return failure(err, "batchTasks");
  }
}

/** `idempotencyKey`: the same for every retry of one submission, so a retry never makes a second task. */
export async function createTaskAction(input: unknown, idempotencyKey?: unknown): Promise<TaskResult> {
  const parsed = createTaskSchema.safeParse(input);
  if (!parsed.success) return validationFailure(parsed.error);
  const key = idempotencyKeyInputSchema.safeParse({ idempotencyKey });
  if (!key.success) return validationFailure(key.error);
  try {
    const tasks = await myTasks("write");
    return { ok: true, task: plainTask(await tasks.create(parsed.data, { idempotencyKey: key.data.idempotencyKey })) };
  } catch (err) {
    return failure(err, "createTask");
  }
}

const restoreInputSchema = z.strictObject({ id: idSchema });

/** Undo of a delete: the same task back (same id, next version); `idempotencyKey` as for a create. */
export async function restoreTaskAction(input: unknown, idempotencyKey?: unknown): Promise<TaskResult> {
  const parsed = restoreInputSchema.safeParse(input);
  if (!parsed.success) return validationFailure(parsed.error);
  const key = idempotencyKeyInputSchema.safeParse({ idempotencyKey });
  if (!key.success) return validationFailure(key.error);
  try {
    const tasks = await myTasks("write");
    return { ok: true, task: plainTask(await tasks.restore(parsed.data.id, { idempotencyKey: key.data.idempotencyKey })) };
  } catch (err) {
    return failure(err, "restoreTask");
  }
}

export async function updateTaskAction(input: unknown): Promise<TaskResult> {
  const parsed = updateInputSchema.safeParse(input);
  if (!parsed.success) return validationFailure(parsed.error);
  try {
    const tasks = await myTasks("write");
    const { id, patch, expectedVersion } = parsed.data;
    return { ok: true, task: plainTask(await tasks.update({ id, patch, expectedVersion })) };
  } catch (err) {
    return failure(err, "updateTask");
  }
}

export async function deleteTaskAction(input: unknown): Promise<DeleteResult> {
  const parsed = deleteInputSchema.safeParse(input);
  if (!parsed.success) return validationFailure(parsed.error);
  try {
    const tasks = await myTasks("write");
    await tasks.remove({ id: parsed.data.id, expectedVersion: parsed.data.expectedVersion });
    return { ok: true };
  } catch (err) {
    return failure(err, "deleteTask");
  }
}
