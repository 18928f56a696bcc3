// No `import "server-only"`: the page's forms validate with these same schemas in the browser.
import { z } from "zod";

/** A task as the API and the page see it. Dates are ISO strings so it crosses JSON unchanged. */
export type Task = {
  id: number;
  title: string;
  done: boolean;
  version: number;
  createdAt: string;
  updatedAt: string;
};

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

export const createTaskSchema = z.strictObject(
  {
    title: titleSchema,
    done: z.boolean({ error: "done must be true or false." }).optional(),
  },
  { error: (iss) => (iss.code === "unrecognized_keys" ? undefined : "Body must be a JSON object.") },
);
export type CreateTaskInput = z.infer<typeof createTaskSchema>;

export const updateTaskSchema = z
  .strictObject(
    {
      title: titleSchema.optional(),
      done: z.boolean({ error: "done must be true or false." }).optional(),
    },
    { error: (iss) => (iss.code === "unrecognized_keys" ? undefined : "Body must be a JSON object.") },
  )
  .refine((p) => p.title !== undefined || p.done !== undefined, {
    error: "Give at least one of title or done.",
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
    .regex(/^[1-9][0-9]{0,9}$/, { error: "cursor must be a value returned as nextCursor." })
    .transform(Number)
    .refine((n) => n <= PG_INT_MAX, { error: "cursor must be a value returned as nextCursor." })
    .optional(),
});

/** A task as responses carry it (documentation and contract tests; the store builds these). */
export const taskResponseSchema = z.strictObject({
  id: z.number().int().min(1).max(PG_INT_MAX),
  title: z.string().min(1).max(TITLE_MAX_CHARS * 2),
  done: z.boolean(),
  version: z.number().int().min(1),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
