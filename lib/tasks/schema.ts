// The API's zod schemas. The page imports ./rules.ts instead (no zod in its JavaScript); the
// schemas here are built on those rules, so both say the same.
import { z } from "zod";

import {
  CURSOR_MAX,
  DUE_DATE_FORMAT,
  DUE_YEAR_MAX,
  DUE_YEAR_MIN,
  EMPTY_TITLE_MESSAGE,
  isDueDay,
  LIST_LIMIT_MAX,
  PG_INT_MAX,
  TASK_SORTS,
  TASK_STATUSES,
  titleContentIssues,
  TITLE_MAX_CHARS,
} from "./rules";

// The rules, constants and types live in ./rules.ts (no zod, so the page can import them); the
// schemas below are built on them. Everything is re-exported, so server code imports one module.
export * from "./rules";

export const titleSchema = z
  .string({ error: "Title must be a string." })
  .trim()
  .min(1, { error: EMPTY_TITLE_MESSAGE })
  .superRefine((t, ctx) => {
    for (const message of titleContentIssues(t)) ctx.addIssue({ code: "custom", message });
  });

const DUE_ON_MESSAGE = `dueOn must be a date written YYYY-MM-DD (years ${DUE_YEAR_MIN} to ${DUE_YEAR_MAX}), or null.`;

/** A real calendar date `YYYY-MM-DD` from 2000 to 2100 (so 2026-02-30 is refused), or null for none. */
export const dueOnSchema = z.union(
  [
    z.null(),
    z
      .string({ error: DUE_ON_MESSAGE })
      .regex(DUE_DATE_FORMAT, { error: DUE_ON_MESSAGE })
      .refine((s) => isDueDay(s), { error: DUE_ON_MESSAGE }),
  ],
  { error: DUE_ON_MESSAGE },
);

export const createTaskSchema = z.strictObject(
  {
    title: titleSchema,
    done: z.boolean({ error: "done must be true or false." }).optional(),
    dueOn: dueOnSchema.optional(),
  },
  { error: (iss) => (iss.code === "unrecognized_keys" ? undefined : "Body must be a JSON object.") },
);
export type CreateTaskInput = z.infer<typeof createTaskSchema>;

export const updateTaskSchema = z
  .strictObject(
    {
      title: titleSchema.optional(),
      done: z.boolean({ error: "done must be true or false." }).optional(),
      dueOn: dueOnSchema.optional(),
    },
    { error: (iss) => (iss.code === "unrecognized_keys" ? undefined : "Body must be a JSON object.") },
  )
  .refine((p) => p.title !== undefined || p.done !== undefined || p.dueOn !== undefined, {
    error: "Give at least one of title, done or dueOn.",
  });
export type TaskPatch = z.infer<typeof updateTaskSchema>;

/** Ids are written with digits only: `1abc`, `0`, `-1`, `1.5` and out-of-range numbers are refused. */
export const taskIdSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/, { error: "Task id must be a positive integer." })
  .transform(Number)
  .refine((n) => n <= PG_INT_MAX, { error: "Task id is out of range." });

export const listQuerySchema = z.strictObject({
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,2}$/, { error: `limit must be an integer from 1 to ${LIST_LIMIT_MAX}.` })
    .transform(Number)
    .refine((n) => n <= LIST_LIMIT_MAX, { error: `limit must be an integer from 1 to ${LIST_LIMIT_MAX}.` })
    .optional(),
  cursor: z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, { error: "cursor must be a value returned as nextCursor." })
    .transform(Number)
    .refine((n) => n <= CURSOR_MAX, { error: "cursor must be a value returned as nextCursor." })
    .optional(),
  status: z.enum(TASK_STATUSES, { error: "status must be all, open or done." }).optional(),
  sort: z.enum(TASK_SORTS, { error: "sort must be new or due." }).optional(),
});

export const BATCH_MAX_IDS = 500;
export const BATCH_OPS = ["complete", "reopen", "delete", "restore"] as const;
export type BatchOp = (typeof BATCH_OPS)[number];

/** POST /api/tasks/batch: one operation on 1..500 of the caller's tasks (duplicates count once). */
export const batchSchema = z.strictObject(
  {
    op: z.enum(BATCH_OPS, { error: "op must be complete, reopen, delete or restore." }),
    ids: z
      .array(
        z
          .number({ error: "Each id must be a positive integer." })
          .int({ error: "Each id must be a positive integer." })
          .min(1, { error: "Each id must be a positive integer." })
          .max(PG_INT_MAX, { error: "Task id is out of range." }),
        { error: "ids must be an array of task ids." },
      )
      .min(1, { error: `ids must hold 1 to ${BATCH_MAX_IDS} task ids.` })
      .max(BATCH_MAX_IDS, { error: `ids must hold 1 to ${BATCH_MAX_IDS} task ids.` }),
  },
  { error: (iss) => (iss.code === "unrecognized_keys" ? undefined : "Body must be a JSON object.") },
);
export type BatchInput = z.infer<typeof batchSchema>;

/** A task as responses carry it (documentation and contract tests; the store builds these). */
export const taskResponseSchema = z.strictObject({
  id: z.number().int().min(1).max(PG_INT_MAX),
  title: z.string().min(1).max(TITLE_MAX_CHARS * 2),
  done: z.boolean(),
  version: z.number().int().min(1),
  dueOn: z.iso.date().nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
