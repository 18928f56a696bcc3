import "server-only";
import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, lt, or, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { cacheRepairs, idempotencyKeys, tasks, user, type IdempotentResponse, type TaskRow } from "../db/schema";
import { dayToDate, parseDueScore, UNDATED_DAY, type Task, type TaskCounts, type TaskSort, type TaskStatus } from "./schema";

// The only module that speaks SQL to the task tables. Each function is one statement; versions are
// bumped by the statement that changes the row, so the version returned is the one that committed.
// Every task statement is scoped by its owner: another user's id matches no row, exactly as a
// missing id doesn't.

export function toTask(row: Omit<TaskRow, "userId" | "deletedAt">): Task {
  return {
    id: row.id,
    title: row.title,
    done: row.done,
    version: row.version,
    dueOn: row.dueOn ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Live rows only: a deleted row (kept for undo until purged) is absent from every read. */
const live = isNull(tasks.deletedAt);
const ownedRows = (userId: string) => and(eq(tasks.userId, userId), live);

/** The fields a write may change. */
export type TaskFields = { title?: string; done?: boolean; dueOn?: string | null };
const owned = (userId: string, id: number) => and(eq(tasks.userId, userId), eq(tasks.id, id), live);

export async function insertTask(db: Db, { userId, title, done, dueOn = null }: { userId: string; title: string; done: boolean; dueOn?: string | null }): Promise<Task> {
  const [row] = await db.insert(tasks).values({ userId, title, done, dueOn }).returning();
  if (!row) throw new Error("INSERT ... RETURNING returned no row");
  return toTask(row);
}

export async function getTaskById(db: Db, { userId, id }: { userId: string; id: number }): Promise<Task | undefined> {
  const [row] = await db.select().from(tasks).where(owned(userId, id));
  return row ? toTask(row) : undefined;
}

export async function getTasksByIds(db: Db, { userId, ids }: { userId: string; ids: number[] }): Promise<Task[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .select()
    .from(tasks)
    .where(and(ownedRows(userId), inArray(tasks.id, ids)));
  return rows.map(toTask);
}

/** Rows by id whoever owns them, with the owner: only for the whole-store audit. */
export async function getOwnedTasksByIds(db: Db, { ids }: { ids: number[] }): Promise<Array<{ userId: string | null; task: Task }>> {
  if (ids.length === 0) return [];
  const rows = await db.select().from(tasks).where(and(inArray(tasks.id, ids), live));
  return rows.map((row) => ({ userId: row.userId, task: toTask(row) }));
}

/**
 * One page of a view, from Postgres: the user's live tasks with `status`, newest first (`after` is
 * the id to continue below) or by due date (dated by day then id, undated last; `after` is the
 * position a due page returned, see dueScore). What the cache's views hold, for when they can't answer.
 */
export async function listTasks(
  db: Db,
  { userId, status = "all", sort = "new", after, limit }: { userId: string; status?: TaskStatus; sort?: TaskSort; after?: number; limit: number },
): Promise<Task[]> {
  const conditions: Array<SQL | undefined> = [ownedRows(userId)];
  if (status !== "all") conditions.push(eq(tasks.done, status === "done"));
  if (sort === "new") {
    if (after !== undefined) conditions.push(lt(tasks.id, after));
    const rows = await db
      .select()
      .from(tasks)
      .where(and(...conditions))
      .orderBy(desc(tasks.id))
      .limit(limit);
    return rows.map(toTask);
  }
  if (after !== undefined) {
    const { day, id } = parseDueScore(after);
    // Rows after (day, id) in "due_on asc nulls last, id asc".
    conditions.push(
      day >= UNDATED_DAY
        ? and(isNull(tasks.dueOn), gt(tasks.id, id))
        : or(isNull(tasks.dueOn), gt(tasks.dueOn, dayToDate(day)), and(eq(tasks.dueOn, dayToDate(day)), gt(tasks.id, id))),
    );
  }
  const rows = await db
    .select()
    .from(tasks)
    .where(and(...conditions))
    .orderBy(sql`${tasks.dueOn} asc nulls last`, asc(tasks.id))
    .limit(limit);
  return rows.map(toTask);
}

/** The user's live tasks, counted in all and by status. */
export async function countTasks(db: Db, { userId }: { userId: string }): Promise<TaskCounts> {
  const [row] = await db
    .select({ all: sql<number>`count(*)::int`, done: sql<number>`(count(*) filter (where ${tasks.done}))::int` })
    .from(tasks)
    .where(ownedRows(userId));
  const all = Number(row?.all ?? 0);
  const done = Number(row?.done ?? 0);
  return { all, open: all - done, done };
}

/** Every id of the user, newest first (tests compare a list index with it; the audits page with listTaskIds). */
export async function listAllTaskIds(db: Db, { userId }: { userId: string }): Promise<number[]> {
  const rows = await db.select({ id: tasks.id }).from(tasks).where(ownedRows(userId)).orderBy(desc(tasks.id));
  return rows.map((r) => r.id);
}

/** One page of the user's ids, newest first, strictly below `beforeId`: what the audits walk a list index with. */
export async function listTaskIds(db: Db, { userId, beforeId, limit }: { userId: string; beforeId?: number; limit: number }): Promise<number[]> {
  const rows = await db
    .select({ id: tasks.id })
    .from(tasks)
    .where(beforeId === undefined ? ownedRows(userId) : and(ownedRows(userId), lt(tasks.id, beforeId)))
    .orderBy(desc(tasks.id))
    .limit(limit);
  return rows.map((r) => r.id);
}

/**
 * One statement for a cold views build: every live task of the user, newest first, with what the
 * views sort by (id, version, done, due date), plus the full rows of the newest `newest` tasks
 * (the other rows' remaining columns come back null and aren't transferred).
 */
export async function listIndexRowsWithNewest(
  db: Db,
  { userId, newest }: { userId: string; newest: number },
): Promise<{ rows: Array<Pick<Task, "id" | "version" | "done" | "dueOn">>; newest: Task[] }> {
  const ranked = db
    .select({
      id: tasks.id,
      title: tasks.title,
      done: tasks.done,
      version: tasks.version,
      dueOn: tasks.dueOn,
      createdAt: tasks.createdAt,
      updatedAt: tasks.updatedAt,
      rank: sql<number>`row_number() over (order by ${tasks.id} desc)`.as("rank"),
    })
    .from(tasks)
    .where(ownedRows(userId))
    .as("ranked");
  const near = sql`${ranked.rank} <= ${newest}`;
  const rows = await db
    .select({
      id: ranked.id,
      done: ranked.done,
      version: ranked.version,
      dueOn: ranked.dueOn,
      title: sql<string | null>`case when ${near} then ${ranked.title} end`,
      createdAt: sql<Date | null>`case when ${near} then ${ranked.createdAt} end`.mapWith(tasks.createdAt),
      updatedAt: sql<Date | null>`case when ${near} then ${ranked.updatedAt} end`.mapWith(tasks.updatedAt),
    })
    .from(ranked)
    .orderBy(desc(ranked.id));
  const full: Task[] = [];
  for (const r of rows) {
    if (r.title === null || !r.createdAt || !r.updatedAt) continue;
    full.push(toTask({ id: r.id, title: r.title, done: r.done, version: Number(r.version), dueOn: r.dueOn, createdAt: r.createdAt, updatedAt: r.updatedAt }));
  }
  return { rows: rows.map((r) => ({ id: r.id, version: Number(r.version), done: r.done, dueOn: r.dueOn ?? null })), newest: full };
}

export async function updateTask(
  db: Db,
  { userId, id, patch, expectedVersion }: { userId: string; id: number; patch: TaskFields; expectedVersion?: number },
): Promise<Task | undefined> {
  const [row] = await db
    .update(tasks)
    .set({
      ...(patch.title !== undefined ? { title: patch.title } : {}),
      ...(patch.done !== undefined ? { done: patch.done } : {}),
      ...(patch.dueOn !== undefined ? { dueOn: patch.dueOn } : {}),
      version: sql`${tasks.version} + 1`,
      updatedAt: sql`now()`,
    })
    .where(expectedVersion === undefined ? owned(userId, id) : and(owned(userId, id), eq(tasks.version, expectedVersion)))
    .returning();
  return row ? toTask(row) : undefined;
}

/**
 * A soft delete: the row stays (for undo) with `deleted_at` set and its version bumped, so the
 * deleted state has a version of its own, the one its tombstone carries. Returns that version.
 */
export async function deleteTask(
  db: Db,
  { userId, id, expectedVersion }: { userId: string; id: number; expectedVersion?: number },
): Promise<{ id: number; version: number } | undefined> {
  const [row] = await db
    .update(tasks)
    .set({ deletedAt: sql`now()`, version: sql`${tasks.version} + 1` })
    .where(expectedVersion === undefined ? owned(userId, id) : and(owned(userId, id), eq(tasks.version, expectedVersion)))
    .returning({ id: tasks.id, version: tasks.version });
  return row;
}

/** Undoes a delete: the same id at the next version (above its tombstone's). Undefined unless the row is deleted. */
export async function restoreTask(db: Db, { userId, id }: { userId: string; id: number }): Promise<Task | undefined> {
  const [row] = await db
    .update(tasks)
    .set({ deletedAt: null, version: sql`${tasks.version} + 1`, updatedAt: sql`now()` })
    .where(and(eq(tasks.userId, userId), eq(tasks.id, id), isNotNull(tasks.deletedAt)))
    .returning();
  return row ? toTask(row) : undefined;
}

/**
 * What Postgres holds for an id, deleted rows included: the live task, the version of a deleted
 * one (the version its tombstone must carry, so a restore can still outrank it), or nothing
 * (never existed, or purged: nothing can bring it back).
 */
export async function getTaskState(db: Db, { userId, id }: { userId: string; id: number }): Promise<{ live: Task } | { deletedVersion: number } | undefined> {
  const [row] = await db.select().from(tasks).where(and(eq(tasks.userId, userId), eq(tasks.id, id)));
  if (!row) return undefined;
  return row.deletedAt === null ? { live: toTask(row) } : { deletedVersion: row.version };
}

/** How long a deleted task can be restored. */
export const DELETED_TASK_RETENTION_DAYS = 30;

/** Removes rows deleted more than `olderThanDays` ago, for good; returns how many. */
export async function purgeDeletedTasks(db: Db, { olderThanDays = DELETED_TASK_RETENTION_DAYS }: { olderThanDays?: number } = {}): Promise<number> {
  const rows = await db
    .delete(tasks)
    .where(and(isNotNull(tasks.deletedAt), sql`${tasks.deletedAt} < now() - make_interval(days => ${olderThanDays})`))
    .returning({ id: tasks.id });
  return rows.length;
}

/**
 * Gives every task without an owner (rows from before accounts) to the account with `email`. In the
 * same transaction it records an index-dirty cache repair for the new owner (on the newest claimed
 * task), so every instance drops that owner's cached list index, which lacks the claimed ids,
 * whether or not the caller can reach the cache afterwards.
 */
export async function claimUnownedTasks(db: Db, { email }: { email: string }): Promise<{ userId: string; claimed: number } | null> {
  return db.transaction(async (tx) => {
    const [owner] = await tx.select({ id: user.id }).from(user).where(eq(user.email, email.toLowerCase()));
    if (!owner) return null;
    const rows = await tx.update(tasks).set({ userId: owner.id }).where(isNull(tasks.userId)).returning({ id: tasks.id });
    const newest = rows.reduce((max, r) => Math.max(max, r.id), 0);
    if (newest > 0) await recordCacheRepair(tx, { kind: "task", userId: owner.id, taskId: newest, indexDirty: true });
    return { userId: owner.id, claimed: rows.length };
  });
}

// ---- cache repairs (the durable record of cache writes still owed) ----------------------------

/** A task slot to rewrite from Postgres, or an auth value (session, API key) to delete from the cache. */
export type CacheRepair =
  | { subject: string; kind: "task"; userId: string; taskId: number; indexDirty: boolean; generation: number }
  | { subject: string; kind: "auth"; userId: string; key: string; generation: number };

export const taskSubject = (taskId: number) => `task:${taskId}`;
export const authSubject = (key: string) => `auth:${key}`;

/** Records (or re-records) that a cache slot must be repaired. */
export async function recordCacheRepair(
  db: Db,
  repair: { kind: "task"; userId: string; taskId: number; indexDirty: boolean } | { kind: "auth"; userId: string; key: string },
): Promise<void> {
  const subject = repair.kind === "task" ? taskSubject(repair.taskId) : authSubject(repair.key);
  const indexDirty = repair.kind === "task" && repair.indexDirty;
  await db
    .insert(cacheRepairs)
    .values({ subject, userId: repair.userId, taskId: repair.kind === "task" ? repair.taskId : null, indexDirty })
    .onConflictDoUpdate({
      target: cacheRepairs.subject,
      set: {
        indexDirty: sql`${cacheRepairs.indexDirty} or excluded.index_dirty`,
        generation: sql`${cacheRepairs.generation} + 1`,
        recordedAt: sql`now()`,
      },
    });
}

/** The oldest repairs owed, of every user, or of one. */
export async function listCacheRepairs(db: Db, { limit, userId }: { limit: number; userId?: string }): Promise<CacheRepair[]> {
  const rows = await db
    .select()
    .from(cacheRepairs)
    .where(userId === undefined ? undefined : eq(cacheRepairs.userId, userId))
    .orderBy(asc(cacheRepairs.recordedAt))
    .limit(limit);
  return rows.map((r) =>
    r.taskId !== null && r.subject.startsWith("task:")
      ? { subject: r.subject, kind: "task", userId: r.userId, taskId: r.taskId, indexDirty: r.indexDirty, generation: r.generation }
      : { subject: r.subject, kind: "auth", userId: r.userId, key: r.subject.slice("auth:".length), generation: r.generation },
  );
}

/** Clears a repair, unless it was recorded again since it was read. */
export async function clearCacheRepair(db: Db, { subject, generation }: { subject: string; generation: number }): Promise<void> {
  await db.delete(cacheRepairs).where(and(eq(cacheRepairs.subject, subject), eq(cacheRepairs.generation, generation)));
}

// ---- idempotency keys (see lib/db/schema.ts) ----------------------------------------------------

/** How long a key is remembered: a retry later than this is a new request. */
export const IDEMPOTENCY_KEY_TTL_HOURS = 24;

export type StoredIdempotencyKey = { requestHash: string; status: number; taskId: number; response: IdempotentResponse; expired: boolean };

export async function findIdempotencyKey(db: Db, { userId, key }: { userId: string; key: string }): Promise<StoredIdempotencyKey | undefined> {
  const [row] = await db
    .select({
      requestHash: idempotencyKeys.requestHash,
      status: idempotencyKeys.status,
      taskId: idempotencyKeys.taskId,
      response: idempotencyKeys.response,
      expired: sql<boolean>`${idempotencyKeys.createdAt} < now() - make_interval(hours => ${IDEMPOTENCY_KEY_TTL_HOURS})`,
    })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.userId, userId), eq(idempotencyKeys.key, key)));
  return row && { ...row, response: parseIdempotentResponse(row.response) };
}

/** Forgets one key, only if it has expired (its slot is about to be reused). */
export async function deleteExpiredIdempotencyKey(db: Db, { userId, key }: { userId: string; key: string }): Promise<void> {
  await db
    .delete(idempotencyKeys)
    .where(
      and(
        eq(idempotencyKeys.userId, userId),
        eq(idempotencyKeys.key, key),
        sql`${idempotencyKeys.createdAt} < now() - make_interval(hours => ${IDEMPOTENCY_KEY_TTL_HOURS})`,
      ),
    );
}

/** Deletes every expired key; returns how many. */
export async function purgeIdempotencyKeys(db: Db): Promise<number> {
  const rows = await db
    .delete(idempotencyKeys)
    .where(sql`${idempotencyKeys.createdAt} < now() - make_interval(hours => ${IDEMPOTENCY_KEY_TTL_HOURS})`)
    .returning({ key: idempotencyKeys.key });
  return rows.length;
}

/** Whether `err` is the unique violation of an idempotency key already taken (by a concurrent request). */
export function isIdempotencyKeyTaken(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 8; depth++, e = (e as { cause?: unknown }).cause) {
    const { code, constraint_name, constraint } = e as { code?: unknown; constraint_name?: unknown; constraint?: unknown };
    if (code === "23505" && (constraint_name ?? constraint) === "idempotency_keys_user_id_key_pk") return true;
  }
  return false;
}

// One statement per keyed write: the task change and the key row together, so a connection lost
// after the statement went out leaves both or neither, and a retry finds which. The answer is built
// here, from the row as committed, and stored with the key; the first attempt answers from the very
// same value a replay will.

const isoMillis = (column: SQL) => sql`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const taskJson = (alias: string) =>
  sql`jsonb_build_object('task', jsonb_build_object('id', ${sql.raw(alias)}.id, 'title', ${sql.raw(alias)}.title, 'done', ${sql.raw(alias)}.done, 'version', ${sql.raw(alias)}.version, 'dueOn', to_char(${sql.raw(alias)}.due_on, 'YYYY-MM-DD'), 'createdAt', ${isoMillis(sql.raw(`${alias}.created_at`))}, 'updatedAt', ${isoMillis(sql.raw(`${alias}.updated_at`))}))`;

type KeyFields = { userId: string; key: string; requestHash: string; status: number };

async function keyedWrite(db: Db, change: SQL, response: SQL, k: KeyFields): Promise<IdempotentResponse | undefined> {
  const result = await db.execute<{ response: IdempotentResponse }>(sql`
    with changed as (${change})
    insert into ${idempotencyKeys} (user_id, key, request_hash, status, task_id, response)
    select ${k.userId}, ${k.key}, ${k.requestHash}, ${k.status}, changed.id, ${response} from changed
    returning response`);
  // postgres.js gives the rows, PGlite an object holding them.
  const rows = (Array.isArray(result) ? result : (result as { rows: Array<{ response: IdempotentResponse }> }).rows) as Array<{ response: IdempotentResponse | string }>;
  const value = rows[0]?.response;
  return value === undefined ? undefined : parseIdempotentResponse(value);
}

/** A stored answer as the API gives it (jsonb keeps its own key order; a task's fields come in the API's). */
export function parseIdempotentResponse(value: IdempotentResponse | string): IdempotentResponse {
  const parsed = (typeof value === "string" ? JSON.parse(value) : value) as IdempotentResponse;
  if ("batch" in parsed) return parsed;
  if (!("task" in parsed)) return { deleted: { id: parsed.deleted.id, version: parsed.deleted.version } };
  const t = parsed.task;
  return { task: { id: t.id, title: t.title, done: t.done, version: t.version, dueOn: t.dueOn ?? null, createdAt: t.createdAt, updatedAt: t.updatedAt } };
}

export async function insertTaskWithKey(db: Db, args: { title: string; done: boolean; dueOn?: string | null } & KeyFields): Promise<Task> {
  const change = sql`insert into ${tasks} (user_id, title, done, due_on) values (${args.userId}, ${args.title}, ${args.done}, ${args.dueOn ?? null}) returning *`;
  const response = await keyedWrite(db, change, taskJson("changed"), args);
  if (!response || !("task" in response)) throw new Error("keyed INSERT returned no row");
  return response.task;
}

export async function updateTaskWithKey(
  db: Db,
  args: { id: number; patch: TaskFields; expectedVersion?: number } & KeyFields,
): Promise<Task | undefined> {
  const sets = [sql`version = version + 1`, sql`updated_at = now()`];
  if (args.patch.title !== undefined) sets.push(sql`title = ${args.patch.title}`);
  if (args.patch.done !== undefined) sets.push(sql`done = ${args.patch.done}`);
  if (args.patch.dueOn !== undefined) sets.push(sql`due_on = ${args.patch.dueOn}`);
  const versionCheck = args.expectedVersion === undefined ? sql`` : sql` and version = ${args.expectedVersion}`;
  const change = sql`update ${tasks} set ${sql.join(sets, sql`, `)} where user_id = ${args.userId} and id = ${args.id} and deleted_at is null${versionCheck} returning *`;
  const response = await keyedWrite(db, change, taskJson("changed"), args);
  return response && "task" in response ? response.task : undefined;
}

export async function restoreTaskWithKey(db: Db, args: { id: number } & KeyFields): Promise<Task | undefined> {
  const change = sql`update ${tasks} set deleted_at = null, version = version + 1, updated_at = now() where user_id = ${args.userId} and id = ${args.id} and deleted_at is not null returning *`;
  const response = await keyedWrite(db, change, taskJson("changed"), args);
  return response && "task" in response ? response.task : undefined;
}

export async function deleteTaskWithKey(db: Db, args: { id: number; expectedVersion?: number } & KeyFields): Promise<{ id: number; version: number } | undefined> {
  const versionCheck = args.expectedVersion === undefined ? sql`` : sql` and version = ${args.expectedVersion}`;
  const change = sql`update ${tasks} set deleted_at = now(), version = version + 1 where user_id = ${args.userId} and id = ${args.id} and deleted_at is null${versionCheck} returning id, version`;
  const response = await keyedWrite(db, change, sql`jsonb_build_object('deleted', jsonb_build_object('id', changed.id, 'version', changed.version))`, args);
  return response && "deleted" in response ? response.deleted : undefined;
}

// ---- batches --------------------------------------------------------------------------------

export type BatchResult =
  | { ok: true; tasks: Task[]; changed: Task[] }
  | { ok: true; deleted: Array<{ id: number; version: number }> }
  | { ok: false; reason: "not_found" | "conflict" };

class BatchRefused extends Error {
  constructor(readonly reason: "not_found" | "conflict") {
    super(reason);
  }
}

/**
 * One operation on several of the user's tasks, in one transaction: every id must be the user's
 * (live ones for complete, reopen and delete; deleted, unpurged ones for restore), or nothing
 * changes (`not_found`; `conflict` when a restore names a live task). Complete and reopen change
 * only the rows not already in that state (each bumps its version) and return every named task as
 * it now is; delete and restore change every row. With `key`, the key and the answer are stored in
 * the same transaction (see keyedWrite).
 */
export async function batchTasks(
  db: Db,
  args: { userId: string; op: "complete" | "reopen" | "delete" | "restore"; ids: number[]; key?: Omit<KeyFields, "userId"> },
): Promise<BatchResult> {
  const { userId, op, ids } = args;
  try {
    return await db.transaction(async (tx) => {
      const found = await tx
        .select({ id: tasks.id, deletedAt: tasks.deletedAt })
        .from(tasks)
        .where(and(eq(tasks.userId, userId), inArray(tasks.id, ids)))
        .for("update");
      if (found.length !== ids.length) throw new BatchRefused("not_found");
      const deletedCount = found.filter((r) => r.deletedAt !== null).length;
      if (op === "restore" ? deletedCount !== ids.length : deletedCount > 0) throw new BatchRefused(op === "restore" ? "conflict" : "not_found");
      let result: BatchResult;
      let response: IdempotentResponse;
      if (op === "delete") {
        const deleted = await tx
          .update(tasks)
          .set({ deletedAt: sql`now()`, version: sql`${tasks.version} + 1` })
          .where(and(eq(tasks.userId, userId), inArray(tasks.id, ids)))
          .returning({ id: tasks.id, version: tasks.version });
        deleted.sort((a, b) => b.id - a.id);
        result = { ok: true, deleted };
        response = { batch: { deleted } };
      } else {
        const changed = (
          op === "restore"
            ? await tx
                .update(tasks)
                .set({ deletedAt: null, version: sql`${tasks.version} + 1`, updatedAt: sql`now()` })
                .where(and(eq(tasks.userId, userId), inArray(tasks.id, ids)))
                .returning()
            : await tx
                .update(tasks)
                .set({ done: op === "complete", version: sql`${tasks.version} + 1`, updatedAt: sql`now()` })
                .where(and(eq(tasks.userId, userId), inArray(tasks.id, ids), eq(tasks.done, op !== "complete")))
                .returning()
        ).map(toTask);
        const changedIds = new Set(changed.map((t) => t.id));
        const unchanged = changedIds.size === ids.length ? [] : (await tx.select().from(tasks).where(and(eq(tasks.userId, userId), inArray(tasks.id, ids)))).map(toTask).filter((t) => !changedIds.has(t.id));
        const all = [...changed, ...unchanged].sort((a, b) => b.id - a.id);
        result = { ok: true, tasks: all, changed };
        response = { batch: { tasks: all } };
      }
      if (args.key) {
        await tx.insert(idempotencyKeys).values({ userId, key: args.key.key, requestHash: args.key.requestHash, status: args.key.status, taskId: Math.max(...ids), response });
      }
      return result;
    });
  } catch (err) {
    if (err instanceof BatchRefused) return { ok: false, reason: err.reason };
    throw err;
  }
}

/** What Postgres holds for several ids (see getTaskState): live tasks and deleted versions; absent ids are left out. */
export async function getTaskStates(db: Db, { userId, ids }: { userId: string; ids: number[] }): Promise<Map<number, { live: Task } | { deletedVersion: number }>> {
  const rows = ids.length === 0 ? [] : await db.select().from(tasks).where(and(eq(tasks.userId, userId), inArray(tasks.id, ids)));
  return new Map(rows.map((row) => [row.id, row.deletedAt === null ? { live: toTask(row) } : { deletedVersion: row.version }]));
}
