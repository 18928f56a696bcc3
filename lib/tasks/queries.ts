import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { cacheRepairs, tasks, type TaskRow } from "../db/schema";
import type { Task } from "./schema";

// The only module that speaks SQL. Each function is one statement; versions are bumped by the
// statement that changes the row, so the version returned is the one that committed.

export function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    title: row.title,
    done: row.done,
    version: row.version,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export async function insertTask(db: Db, { title, done }: { title: string; done: boolean }): Promise<Task> {
  const [row] = await db.insert(tasks).values({ title, done }).returning();
  if (!row) throw new Error("INSERT ... RETURNING returned no row");
  return toTask(row);
}

export async function getTaskById(db: Db, { id }: { id: number }): Promise<Task | undefined> {
  const [row] = await db.select().from(tasks).where(eq(tasks.id, id));
  return row ? toTask(row) : undefined;
}

export async function getTasksByIds(db: Db, { ids }: { ids: number[] }): Promise<Task[]> {
  if (ids.length === 0) return [];
  const rows = await db.select().from(tasks).where(inArray(tasks.id, ids));
  return rows.map(toTask);
}

/** Newest first (id descending); `beforeId` is the keyset cursor. */
export async function listTasks(db: Db, { beforeId, limit }: { beforeId?: number; limit: number }): Promise<Task[]> {
  const rows = await db
    .select()
    .from(tasks)
    .where(beforeId === undefined ? undefined : lt(tasks.id, beforeId))
    .orderBy(desc(tasks.id))
    .limit(limit);
  return rows.map(toTask);
}

/** Every id, newest first: what a cold list index is built from. */
export async function listAllTaskIds(db: Db): Promise<number[]> {
  const rows = await db.select({ id: tasks.id }).from(tasks).orderBy(desc(tasks.id));
  return rows.map((r) => r.id);
}

/**
 * One statement for a cold list index: every id newest first, plus the full rows of the newest
 * `newest` tasks (the other rows' columns come back null and aren't transferred).
 */
export async function listAllTaskIdsWithNewest(db: Db, { newest }: { newest: number }): Promise<{ ids: number[]; newest: Task[] }> {
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
  { id, patch, expectedVersion }: { id: number; patch: { title?: string; done?: boolean }; expectedVersion?: number },
): Promise<Task | undefined> {
  const [row] = await db
    .update(tasks)
    .set({
      ...(patch.title !== undefined ? { title: patch.title } : {}),
      ...(patch.done !== undefined ? { done: patch.done } : {}),
      version: sql`${tasks.version} + 1`,
      updatedAt: sql`now()`,
    })
    .where(expectedVersion === undefined ? eq(tasks.id, id) : and(eq(tasks.id, id), eq(tasks.version, expectedVersion)))
    .returning();
  return row ? toTask(row) : undefined;
}

export async function deleteTask(
  db: Db,
  { id, expectedVersion }: { id: number; expectedVersion?: number },
): Promise<{ id: number; version: number } | undefined> {
  const [row] = await db
    .delete(tasks)
    .where(expectedVersion === undefined ? eq(tasks.id, id) : and(eq(tasks.id, id), eq(tasks.version, expectedVersion)))
    .returning({ id: tasks.id, version: tasks.version });
  return row;
}

// ---- cache repairs (the durable record of cache writes still owed) ----------------------------

export type CacheRepair = { taskId: number; indexDirty: boolean; generation: number };

/** Records (or re-records) that `taskId`'s cache entry must be rewritten from Postgres. */
export async function recordCacheRepair(db: Db, { taskId, indexDirty }: { taskId: number; indexDirty: boolean }): Promise<void> {
  await db
    .insert(cacheRepairs)
    .values({ taskId, indexDirty })
    .onConflictDoUpdate({
      target: cacheRepairs.taskId,
      set: {
        indexDirty: sql`${cacheRepairs.indexDirty} or excluded.index_dirty`,
        generation: sql`${cacheRepairs.generation} + 1`,
        recordedAt: sql`now()`,
      },
    });
}

export async function listCacheRepairs(db: Db, { limit }: { limit: number }): Promise<CacheRepair[]> {
  return db
    .select({ taskId: cacheRepairs.taskId, indexDirty: cacheRepairs.indexDirty, generation: cacheRepairs.generation })
    .from(cacheRepairs)
    .orderBy(cacheRepairs.recordedAt)
    .limit(limit);
}

/** Clears a repair, unless it was recorded again since it was read. */
export async function clearCacheRepair(db: Db, { taskId, generation }: { taskId: number; generation: number }): Promise<void> {
  await db.delete(cacheRepairs).where(and(eq(cacheRepairs.taskId, taskId), eq(cacheRepairs.generation, generation)));
}
