import { countChars, TITLE_MAX_CHARS, titleIssues } from "@/lib/tasks/rules";

export type TitleKind = "create" | "update";
export type TitleCheck = { ok: true; title: string } | { ok: false; message: string };

/**
 * The `maxlength` of every title field. HTML counts UTF-16 units and the schema counts characters,
 * so this leaves room for 500 emoji, and past 500 plain characters the field shows the schema's
 * message instead of silently cutting the text.
 */
export const TITLE_INPUT_MAX_LENGTH = TITLE_MAX_CHARS * 2;

/**
 * Checks a title with the rules the server's schemas are built on (lib/tasks/rules.ts), so the
 * field shows exactly the message the server would give, before anything is sent. A new title and
 * an edited one are held to the same rules.
 */
export function checkTitle(value: string, _kind: TitleKind): TitleCheck {
  const [problem] = titleIssues(value);
  return problem === undefined ? { ok: true, title: value.trim() } : { ok: false, message: problem };
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
