import "server-only";
import { sql } from "drizzle-orm";
import { boolean, check, date, index, integer, jsonb, pgTable, primaryKey, serial, text, timestamp } from "drizzle-orm/pg-core";
import type { Task } from "../tasks/schema";

const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();

// ---- accounts (better-auth's models; property names are the field names better-auth uses) ------

/** People who signed up. Ids are better-auth's random strings; they become the cache hash tag. */
export const user = pgTable("users", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  email: text("email").notNull().unique(),
  emailVerified: boolean("email_verified").notNull().default(false),
  image: text("image"),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

/** Sign-in sessions. The source of truth; the cache keeps copies (better-auth secondary storage). */
export const session = pgTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    token: text("token").notNull().unique(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    ipAddress: text("ip_address"),
    userAgent: text("user_agent"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("sessions_user_id_idx").on(t.userId)],
);

/** Credentials: for email + password, providerId "credential" and the password hash. */
export const account = pgTable(
  "accounts",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id").notNull(),
    providerId: text("provider_id").notNull(),
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    accessToken: text("access_token"),
    refreshToken: text("refresh_token"),
    idToken: text("id_token"),
    accessTokenExpiresAt: timestamp("access_token_expires_at", { withTimezone: true, mode: "date" }),
    refreshTokenExpiresAt: timestamp("refresh_token_expires_at", { withTimezone: true, mode: "date" }),
    scope: text("scope"),
    password: text("password"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("accounts_user_id_idx").on(t.userId)],
);

export const verification = pgTable(
  "verifications",
  {
    id: text("id").primaryKey(),
    identifier: text("identifier").notNull(),
    value: text("value").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("verifications_identifier_idx").on(t.identifier)],
);

/** API keys for programs (better-auth's api-key plugin). `key` holds only the hash of the secret. */
export const apikey = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    configId: text("config_id").notNull().default("default"),
    name: text("name"),
    start: text("start"),
    prefix: text("prefix"),
    key: text("key").notNull(),
    referenceId: text("reference_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    refillInterval: integer("refill_interval"),
    refillAmount: integer("refill_amount"),
    lastRefillAt: timestamp("last_refill_at", { withTimezone: true, mode: "date" }),
    enabled: boolean("enabled").default(true),
    rateLimitEnabled: boolean("rate_limit_enabled").default(true),
    rateLimitTimeWindow: integer("rate_limit_time_window"),
    rateLimitMax: integer("rate_limit_max"),
    requestCount: integer("request_count").default(0),
    remaining: integer("remaining"),
    lastRequest: timestamp("last_request", { withTimezone: true, mode: "date" }),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    permissions: text("permissions"),
    metadata: text("metadata"),
  },
  (t) => [
    index("api_keys_key_idx").on(t.key),
    index("api_keys_reference_id_idx").on(t.referenceId),
    index("api_keys_config_id_idx").on(t.configId),
  ],
);

// ---- tasks ------------------------------------------------------------------------------------

/**
 * `version` starts at 1 and is bumped by the same UPDATE that changes the row, so every committed
 * state of a task has its own, increasing version: the cache compares versions, never timestamps.
 * The CHECKs mirror lib/tasks/schema.ts, so a title that bypassed the API is still refused.
 * `user_id` is the owner; rows from before accounts existed have none (visible to no one) until
 * `npm run tasks:claim` gives them to an account. A delete is soft (`deleted_at`, kept 30 days so
 * it can be undone with the same id), then purged.
 */
export const tasks = pgTable(
  "tasks",
  {
    id: serial("id").primaryKey(),
    userId: text("user_id").references(() => user.id, { onDelete: "cascade" }),
    title: text("title").notNull(),
    done: boolean("done").notNull().default(false),
    version: integer("version").notNull().default(1),
    /** The calendar day it is due (no time, no zone), or null. */
    dueOn: date("due_on", { mode: "string" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    /** Set by a delete (which bumps the version); a deleted row is absent from every read until restored or purged. */
    deletedAt: timestamp("deleted_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("tasks_user_id_id_idx").on(t.userId, t.id.desc()),
    index("tasks_deleted_at_idx").on(t.deletedAt).where(sql`${t.deletedAt} is not null`),
    // The Postgres side of the views, for when the cache can't answer: live rows by status, and by due date.
    index("tasks_user_id_done_id_idx").on(t.userId, t.done, t.id.desc()).where(sql`${t.deletedAt} is null`),
    index("tasks_user_id_due_on_id_idx").on(t.userId, t.dueOn, t.id).where(sql`${t.deletedAt} is null`),
    check("tasks_due_on_range", sql`${t.dueOn} between '2000-01-01' and '2100-12-31'`),
    check("tasks_title_length", sql`char_length(${t.title}) between 1 and 500`),
    check("tasks_title_trimmed", sql`${t.title} = btrim(${t.title}, E' \\t\\n\\r')`),
    check("tasks_title_no_control_chars", sql`${t.title} !~ '[\\x01-\\x1f\\x7f-\\x9f]'`),
    check("tasks_version_positive", sql`${t.version} >= 1`),
  ],
);

export type TaskRow = typeof tasks.$inferSelect;

/**
 * Cache repairs still owed: a write committed here whose cache update failed or came too late.
 * `subject` names the cache slot: `task:<id>` (rewrite that task from Postgres; `index_dirty` when
 * the user's list index may be wrong too) or `auth:<key>` (a session or API key that was revoked
 * here but whose cached copy could not be deleted). Every instance (or, serverless, the repair
 * route) carries these out, then deletes the row. See docs/decisions/004-durable-cache-repair.md.
 */
export const cacheRepairs = pgTable(
  "cache_repairs",
  {
    subject: text("subject").primaryKey(),
    /** The owner whose cache slot is affected (empty for auth keys of unknown owner). */
    userId: text("user_id").notNull(),
    taskId: integer("task_id"),
    /** The write was a create or delete: the owner's list index may lack or keep the id. */
    indexDirty: boolean("index_dirty").notNull().default(false),
    /** Bumped each time the repair is recorded again, so a repair only clears what it has seen. */
    generation: integer("generation").notNull().default(1),
    recordedAt: timestamp("recorded_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [index("cache_repairs_recorded_at_idx").on(t.recordedAt)],
);


/**
 * Idempotency keys of writes (`Idempotency-Key`): the key, a hash of the request it came with, and
 * the answer, written in the same transaction as the write itself, so a retry finds either both or
 * neither. Kept 24 h. `response` is the task as the write left it (for a delete, its id and last
 * version), so a replay can answer the original body and redo the write-through.
 */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    userId: text("user_id")
      .notNull()
      .references(() => user.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    status: integer("status").notNull(),
    taskId: integer("task_id").notNull(),
    response: jsonb("response").$type<IdempotentResponse>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.key] }), index("idempotency_keys_created_at_idx").on(t.createdAt)],
);

/** What a replay needs: the task after the write (create, update), or the deleted task's id and last version. */
export type IdempotentResponse =
  | { task: Task }
  | { deleted: { id: number; version: number } }
  /** A batch: the tasks it left (complete, reopen, restore), or the ids it deleted with their deleted versions. */
  | { batch: { tasks: Task[] } | { deleted: Array<{ id: number; version: number }> } };
