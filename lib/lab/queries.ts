import "server-only";
import { and, desc, eq, isNotNull, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { tasks } from "../db/schema";

// The cache lab's own statements (lib/tasks/queries.ts stays the app's). Two kinds:
//   - every id a user has in Postgres, deleted rows included, for "Flush my cache";
//   - the race demo's scratch task: a row of `tasks` owned by the user but inserted already
//     deleted, so every read of the app (lists, counts, gets, audits) skips it, renamed by its own
//     UPDATE that bumps the version as the app's do, and hard-deleted when the demo ends.

/** Most ids a flush evicts by id (the user's list views are dropped whatever their size). */
export const FLUSH_IDS_MAX = 10_000;

/** Every id the user has in Postgres, live and deleted (kept for undo), newest first, at most FLUSH_IDS_MAX. */
export async function listAllIdsWithDeleted(db: Db, { userId }: { userId: string }): Promise<number[]> {
  const rows = await db.select({ id: tasks.id }).from(tasks).where(eq(tasks.userId, userId)).orderBy(desc(tasks.id)).limit(FLUSH_IDS_MAX);
  return rows.map((r) => r.id);
}

/** Whether the user has (or had, within undo) a task with this id, live or deleted. */
export async function ownsTaskId(db: Db, { userId, id }: { userId: string; id: number }): Promise<boolean> {
  const [row] = await db
    .select({ id: tasks.id })
    .from(tasks)
    .where(and(eq(tasks.userId, userId), eq(tasks.id, id)));
  return row !== undefined;
}

/** The scratch row as the demo reads it. */
export type ScratchRow = { id: number; title: string; version: number };

/** Inserts the scratch task, deleted from the start: no read of the app ever sees it. */
export async function insertScratchTask(db: Db, { userId, title }: { userId: string; title: string }): Promise<ScratchRow> {
  const [row] = await db
    .insert(tasks)
    .values({ userId, title, deletedAt: sql`now()` })
    .returning({ id: tasks.id, title: tasks.title, version: tasks.version });
  if (!row) throw new Error("INSERT ... RETURNING returned no row");
  return row;
}

/**
 * One rename of the scratch task: the title, and the version bumped by the same statement, as
 * every write of the app does. Only while the row is still the (deleted) scratch row; undefined
 * otherwise (someone restored it, or it is gone).
 */
export async function renameScratchTask(db: Db, { userId, id, title }: { userId: string; id: number; title: string }): Promise<ScratchRow | undefined> {
  const [row] = await db
    .update(tasks)
    .set({ title, version: sql`${tasks.version} + 1`, updatedAt: sql`now()` })
    .where(and(eq(tasks.userId, userId), eq(tasks.id, id), isNotNull(tasks.deletedAt)))
    .returning({ id: tasks.id, title: tasks.title, version: tasks.version });
  return row;
}

/** The scratch row as Postgres has it now (undefined when gone). */
export async function getScratchTask(db: Db, { userId, id }: { userId: string; id: number }): Promise<ScratchRow | undefined> {
  const [row] = await db
    .select({ id: tasks.id, title: tasks.title, version: tasks.version })
    .from(tasks)
    .where(and(eq(tasks.userId, userId), eq(tasks.id, id)));
  return row;
}

/**
 * Removes the scratch row for good. Returns what it removed: `wasLive` when the row had been
 * restored meanwhile (through the API's undo, say), so it may have reached the user's cache.
 */
export async function deleteScratchTask(db: Db, { userId, id }: { userId: string; id: number }): Promise<{ removed: boolean; wasLive: boolean }> {
  const rows = await db
    .delete(tasks)
    .where(and(eq(tasks.userId, userId), eq(tasks.id, id)))
    .returning({ deletedAt: tasks.deletedAt });
  const row = rows[0];
  return { removed: row !== undefined, wasLive: row !== undefined && row.deletedAt === null };
}
