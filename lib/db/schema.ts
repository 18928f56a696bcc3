import { sql } from "drizzle-orm";
import { boolean, check, integer, pgTable, serial, text, timestamp } from "drizzle-orm/pg-core";

/**
 * `version` starts at 1 and is bumped by the same UPDATE that changes the row, so every committed
 * state of a task has its own, increasing version: the cache compares versions, never timestamps.
 * The CHECKs mirror lib/tasks/schema.ts, so a title that bypassed the API is still refused.
 */
export const tasks = pgTable(
  "tasks",
  {
    id: serial("id").primaryKey(),
    title: text("title").notNull(),
    done: boolean("done").notNull().default(false),
    version: integer("version").notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    check("tasks_title_length", sql`char_length(${t.title}) between 1 and 500`),
    check("tasks_title_trimmed", sql`${t.title} = btrim(${t.title}, E' \\t\\n\\r')`),
    check("tasks_title_no_control_chars", sql`${t.title} !~ '[\\x01-\\x1f\\x7f-\\x9f]'`),
    check("tasks_version_positive", sql`${t.version} >= 1`),
  ],
);

export type TaskRow = typeof tasks.$inferSelect;

/**
 * Cache repairs still owed: a write committed here whose cache update failed or came too late.
 * Every instance (or, serverless, the repair route) rewrites these ids from Postgres, then deletes
 * the row. See docs/decisions/004-durable-cache-repair.md.
 */
export const cacheRepairs = pgTable("cache_repairs", {
  taskId: integer("task_id").primaryKey(),
  /** The write was a create or delete: the list index may lack or keep the id. */
  indexDirty: boolean("index_dirty").notNull().default(false),
  /** Bumped each time the repair is recorded again, so a repair only clears what it has seen. */
  generation: integer("generation").notNull().default(1),
  recordedAt: timestamp("recorded_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
});
