// No `import "server-only"`: the page's forms validate with these same schemas in the browser.
import { z } from "zod";

/** A task as the API and the page see it. Dates are ISO strings so it crosses JSON unchanged. */
export type Task = {
  id: number;
  title: string;
  done: boolean;
  version: number;
  /** Calendar date the task is due (`YYYY-MM-DD`), or null. */
  dueOn: string | null;
  createdAt: string;
  updatedAt: string;
};

/** Which tasks a list shows: every live one, the open ones, or the completed ones. */
export const TASK_STATUSES = ["all", "open", "done"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
/** How a list is ordered: newest first (id descending), or by due date (dated by date then id, undated last). */
export const TASK_SORTS = ["new", "due"] as const;
export type TaskSort = (typeof TASK_SORTS)[number];
/** How many live tasks the user has, in all and by status. */
export type TaskCounts = { all: number; open: number; done: number };

/** Due dates run from 2000-01-01 to 2100-12-31. */
export const DUE_YEAR_MIN = 2000;
export const DUE_YEAR_MAX = 2100;
const DAY_MS = 86_400_000;
const DUE_EPOCH_MS = Date.UTC(DUE_YEAR_MIN, 0, 1);
/** The day number an undated task sorts at: after every real date (2100-12-31 is day 36889). */
export const UNDATED_DAY = 65_535;
/** Ids are below 2^31, so `day * 2^31 + id` orders by day then id and stays an exact double (< 2^47). */
const ID_SPAN = 2_147_483_648;

/** Days since 2000-01-01 of a valid `YYYY-MM-DD`; UNDATED_DAY for null. */
export function dueDay(dueOn: string | null): number {
  if (dueOn === null) return UNDATED_DAY;
  const [y, m, d] = dueOn.split("-").map(Number) as [number, number, number];
  return Math.round((Date.UTC(y, m - 1, d) - DUE_EPOCH_MS) / DAY_MS);
}

/** The position of a task in the due order: by due day, then id; undated last. */
export function dueScore(task: Pick<Task, "id" | "dueOn">): number {
  return dueDay(task.dueOn) * ID_SPAN + task.id;
}

/** The due day and id a due-order cursor stands for. */
export function parseDueScore(score: number): { day: number; id: number } {
  return { day: Math.floor(score / ID_SPAN), id: score % ID_SPAN };
}

/** The `YYYY-MM-DD` of a day number (the inverse of dueDay). */
export function dayToDate(day: number): string {
  return new Date(DUE_EPOCH_MS + day * DAY_MS).toISOString().slice(0, 10);
}

/** The largest cursor value any list can return (a due-order position). */
export const CURSOR_MAX = UNDATED_DAY * ID_SPAN + (ID_SPAN - 1);

export const TITLE_MAX_CHARS = 500;
export const LIST_LIMIT_DEFAULT = 50;
export const LIST_LIMIT_MAX = 200;
/** Largest value of a Postgres `integer` (ids are `serial`). */
export const PG_INT_MAX = 2_147_483_647;

// C0 and C1 control characters, DEL and NUL. The database has the same CHECK, so a title the form
// accepts is one Postgres accepts. Account and API-key names are held to the same rule.
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

// With the u flag a paired surrogate is one code point, so this matches only broken halves, which
// would otherwise be stored as U+FFFD.
const LONE_SURROGATE = /[\ud800-\udfff]/u;

// Bidirectional overrides and isolates (LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI): they reorder
// the text around a title wherever it is shown, so a title could display as something it is not.
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;

// A code point that leaves a mark: not whitespace, a control or format character (zero-width space
// and joiners, word joiner, BOM), a combining mark on nothing, an unpaired surrogate, another
// default-ignorable code point (Hangul fillers, variation selectors) or the blank Braille cell.
const VISIBLE_CHAR = /[^\p{White_Space}\p{Cc}\p{Cf}\p{Cs}\p{M}\p{Default_Ignorable_Code_Point}\u2800]/u;

/** `U+202E` for the code point at the start of `char`. */
function codePointName(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Counts code points, as Postgres `char_length` does, so an emoji is one character, not two. */
export function countChars(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

export const titleSchema = z
  .string({ error: "Title must be a string." })
  .trim()
  .min(1, { error: "Title must not be empty." })
  .refine((t) => countChars(t) <= TITLE_MAX_CHARS, {
    error: `Title must be at most ${TITLE_MAX_CHARS} characters.`,
  })
  .refine((t) => !CONTROL_CHARS.test(t), {
    error: "Title must not contain control characters.",
  })
  .refine((t) => !LONE_SURROGATE.test(t), { error: "Title must be valid Unicode text." })
  .superRefine((t, ctx) => {
    const bidi = BIDI_CONTROL.exec(t);
    if (bidi) ctx.addIssue({ code: "custom", message: `Titles can't contain the bidirectional control ${codePointName(bidi[0])}.` });
    // An empty title, a control character or a broken surrogate has its message already.
    else if (t !== "" && !CONTROL_CHARS.test(t) && !LONE_SURROGATE.test(t) && !VISIBLE_CHAR.test(t)) {
      ctx.addIssue({ code: "custom", message: "Title must contain at least one visible character." });
    }
  });

const DUE_ON_MESSAGE = `dueOn must be a date written YYYY-MM-DD (years ${DUE_YEAR_MIN} to ${DUE_YEAR_MAX}), or null.`;

/** A real calendar date `YYYY-MM-DD` from 2000 to 2100 (so 2026-02-30 is refused), or null for none. */
export const dueOnSchema = z.union(
  [
    z.null(),
    z
      .string({ error: DUE_ON_MESSAGE })
      .regex(/^\d{4}-\d{2}-\d{2}$/, { error: DUE_ON_MESSAGE })
      .refine(
        (s) => {
          const [y, m, d] = s.split("-").map(Number) as [number, number, number];
          if (y < DUE_YEAR_MIN || y > DUE_YEAR_MAX) return false;
          const date = new Date(Date.UTC(y, m - 1, d));
          return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
        },
        { error: DUE_ON_MESSAGE },
      ),
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
