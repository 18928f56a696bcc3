import "server-only";
import { and, asc, desc, eq, inArray, isNotNull, isNull, lt, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { cacheRepairs, idempotencyKeys, tasks, user, type IdempotentResponse, type TaskRow } from "../db/schema";
import type { Task } from "./schema";

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
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Live rows only: a deleted row (kept for undo until purged) is absent from every read. */
const live = isNull(tasks.deletedAt);
const ownedRows = (userId: string) => and(eq(tasks.userId, userId), live);
const owned = (userId: string, id: number) => and(eq(tasks.userId, userId), eq(tasks.id, id), live);

export async function insertTask(db: Db, { userId, title, done }: { userId: string; title: string; done: boolean }): Promise<Task> {
  const [row] = await db.insert(tasks).values({ userId, title, done }).returning();
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

/** Newest first (id descending); `beforeId` is the keyset cursor. */
export async function listTasks(db: Db, { userId, beforeId, limit }: { userId: string; beforeId?: number; limit: number }): Promise<Task[]> {
  const rows = await db
    .select()
    .from(tasks)
    .where(beforeId === undefined ? ownedRows(userId) : and(ownedRows(userId), lt(tasks.id, beforeId)))
    .orderBy(desc(tasks.id))
    .limit(limit);
  return rows.map(toTask);
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
 * One statement for a cold list index: every id of the user newest first, plus the full rows of the
 * newest `newest` tasks (the other rows' columns come back null and aren't transferred).
 */
export async function listAllTaskIdsWithNewest(db: Db, { userId, newest }: { userId: string; newest: number }): Promise<{ ids: number[]; newest: Task[] }> {
  const ranked = db
    .select({
      id: tasks.id,
      title: tasks.title,
      done: tasks.done,
      version: tasks.version,
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
      title: sql<string | null>`case when ${near} then ${ranked.title} end`,
      done: sql<boolean | null>`case when ${near} then ${ranked.done} end`,
      version: sql<number | null>`case when ${near} then ${ranked.version} end`,
      createdAt: sql<Date | null>`case when ${near} then ${ranked.createdAt} end`.mapWith(tasks.createdAt),
      updatedAt: sql<Date | null>`case when ${near} then ${ranked.updatedAt} end`.mapWith(tasks.updatedAt),
    })
    .from(ranked)
    .orderBy(desc(ranked.id));
  const full: Task[] = [];
  for (const r of rows) {
    if (r.title === null || r.done === null || r.version === null || !r.createdAt || !r.updatedAt) continue;
    full.push(toTask({ id: r.id, title: r.title, done: r.done, version: Number(r.version), createdAt: r.createdAt, updatedAt: r.updatedAt }));
  }
  return { ids: rows.map((r) => r.id), newest: full };
}

export async function updateTask(
  db: Db,
  { userId, id, patch, expectedVersion }: { userId: string; id: number; patch: { title?: string; done?: boolean }; expectedVersion?: number },
): Promise<Task | undefined> {
  const [row] = await db
    .update(tasks)
    .set({
      ...(patch.title !== undefined ? { title: patch.title } : {}),
      ...(patch.done !== undefined ? { done: patch.done } : {}),
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
  sql`jsonb_build_object('task', jsonb_build_object('id', ${sql.raw(alias)}.id, 'title', ${sql.raw(alias)}.title, 'done', ${sql.raw(alias)}.done, 'version', ${sql.raw(alias)}.version, 'createdAt', ${isoMillis(sql.raw(`${alias}.created_at`))}, 'updatedAt', ${isoMillis(sql.raw(`${alias}.updated_at`))}))`;

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
  if (!("task" in parsed)) return { deleted: { id: parsed.deleted.id, version: parsed.deleted.version } };
  const t = parsed.task;
  return { task: { id: t.id, title: t.title, done: t.done, version: t.version, createdAt: t.createdAt, updatedAt: t.updatedAt } };
}

export async function insertTaskWithKey(db: Db, args: { title: string; done: boolean } & KeyFields): Promise<Task> {
  const change = sql`insert into ${tasks} (user_id, title, done) values (${args.userId}, ${args.title}, ${args.done}) returning *`;
  const response = await keyedWrite(db, change, taskJson("changed"), args);
  if (!response || !("task" in response)) throw new Error("keyed INSERT returned no row");
  return response.task;
}

export async function updateTaskWithKey(
  db: Db,
  args: { id: number; patch: { title?: string; done?: boolean }; expectedVersion?: number } & KeyFields,
): Promise<Task | undefined> {
  const sets = [sql`version = version + 1`, sql`updated_at = now()`];
  if (args.patch.title !== undefined) sets.push(sql`title = ${args.patch.title}`);
  if (args.patch.done !== undefined) sets.push(sql`done = ${args.patch.done}`);
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
