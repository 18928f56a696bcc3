import { countChars, createTaskSchema, TITLE_MAX_CHARS, updateTaskSchema } from "@/lib/tasks/schema";

export type TitleKind = "create" | "update";
export type TitleCheck = { ok: true; title: string } | { ok: false; message: string };

/**
 * The `maxlength` of every title field. HTML counts UTF-16 units and the schema counts characters,
 * so this leaves room for 500 emoji, and past 500 plain characters the field shows the schema's
 * message instead of silently cutting the text.
 */
export const TITLE_INPUT_MAX_LENGTH = TITLE_MAX_CHARS * 2;

/**
 * Checks a title with the same zod schema the server action parses it with (create or update), so
 * the field shows exactly the message the server would give, before anything is sent.
 */
export function checkTitle(value: string, kind: TitleKind): TitleCheck {
  const parsed =
    kind === "create" ? createTaskSchema.safeParse({ title: value }) : updateTaskSchema.safeParse({ title: value });
  if (parsed.success && parsed.data.title !== undefined) return { ok: true, title: parsed.data.title };
  const message = parsed.success ? undefined : parsed.error.issues[0]?.message;
  return { ok: false, message: message ?? "This title can't be used." };
}

/** The message for the first problem with a title, or null when it is acceptable. */
export function titleError(value: string, kind: TitleKind): string | null {
  const check = checkTitle(value, kind);
  return check.ok ? null : check.message;
}

/** The counter under a title field shows from this many characters on (80% of the limit). */
export const TITLE_COUNTER_FROM = Math.round(TITLE_MAX_CHARS * 0.8);

export type TitleCounter = {
  /** Characters as the schema counts them: code points of the trimmed title. */
  count: number;
  /** Shown under the field: "420 / 500"; null below TITLE_COUNTER_FROM. */
  text: string | null;
  /** What a screen reader is told once typing pauses; null below TITLE_COUNTER_FROM. */
  announcement: string | null;
  over: boolean;
};

/** The live counter of a title field, counted as the schema counts (so it agrees with its verdict). */
export function titleCounter(value: string): TitleCounter {
  const count = countChars(value.trim());
  const over = count > TITLE_MAX_CHARS;
  if (count < TITLE_COUNTER_FROM) return { count, text: null, announcement: null, over };
  const left = TITLE_MAX_CHARS - count;
  const announcement = over
    ? `${count} of ${TITLE_MAX_CHARS} characters: ${-left} too many.`
    : `${count} of ${TITLE_MAX_CHARS} characters, ${left} left.`;
  return { count, text: `${count} / ${TITLE_MAX_CHARS}`, announcement, over };
}
