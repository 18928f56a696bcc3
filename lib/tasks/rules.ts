// No zod here, and no `import "server-only"`: the page's components import these rules and
// constants, and a value imported from lib/tasks/schema.ts would bring all of zod into the page's
// JavaScript. lib/tasks/schema.ts builds the API's zod schemas on these same rules, so a title the
// form accepts is one the server accepts, with the same message when it is not.

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

export const EMPTY_TITLE_MESSAGE = "Title must not be empty.";

/**
 * What is wrong with a (trimmed) title besides being empty, in the order the API reports it: too
 * long, control characters, broken Unicode, then a bidirectional control or no visible character.
 */
export function titleContentIssues(title: string): string[] {
  const issues: string[] = [];
  if (countChars(title) > TITLE_MAX_CHARS) issues.push(`Title must be at most ${TITLE_MAX_CHARS} characters.`);
  const control = CONTROL_CHARS.test(title);
  const broken = LONE_SURROGATE.test(title);
  if (control) issues.push("Title must not contain control characters.");
  if (broken) issues.push("Title must be valid Unicode text.");
  const bidi = BIDI_CONTROL.exec(title);
  if (bidi) issues.push(`Titles can't contain the bidirectional control ${codePointName(bidi[0])}.`);
  // An empty title, a control character or a broken surrogate has its message already.
  else if (title !== "" && !control && !broken && !VISIBLE_CHAR.test(title)) issues.push("Title must contain at least one visible character.");
  return issues;
}

/** Every problem with a title as typed (it is trimmed first, as the API does), in the API's order. */
export function titleIssues(value: string): string[] {
  const title = value.trim();
  return title === "" ? [EMPTY_TITLE_MESSAGE] : titleContentIssues(title);
}

/** Whether a `YYYY-MM-DD` string names a real calendar day from DUE_YEAR_MIN to DUE_YEAR_MAX (2026-02-30 does not). */
export function isDueDay(s: string): boolean {
  const [y, m, d] = s.split("-").map(Number) as [number, number, number];
  if (y < DUE_YEAR_MIN || y > DUE_YEAR_MAX) return false;
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

export const DUE_DATE_FORMAT = /^\d{4}-\d{2}-\d{2}$/;

/** Whether `s` is a due date the API takes: written `YYYY-MM-DD`, and a real day in range. */
export function isDueDate(s: string): boolean {
  return DUE_DATE_FORMAT.test(s) && isDueDay(s);
}
