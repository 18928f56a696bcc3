import { describe, expect, test } from "vitest";
import { createTaskSchema, listQuerySchema, taskIdSchema, titleSchema, updateTaskSchema } from "@/lib/tasks/schema";

describe("task validation shared by the form, the server actions and the API", () => {
  test.each(["1", "42", "2147483647"])("id %s is accepted", (raw) => {
    expect(taskIdSchema.parse(raw)).toBe(Number(raw));
  });

  test.each(["1abc", "0", "-1", "1.5", "99999999999999999999", "2147483648", "01", " 1", "1e3", "0x10", ""])(
    "id %j is refused",
    (raw) => {
      expect(taskIdSchema.safeParse(raw).success).toBe(false);
    },
  );

  test("titles are trimmed", () => {
    expect(titleSchema.parse("  buy milk \t")).toBe("buy milk");
  });

  test("500 characters are allowed, 501 are not, counting an emoji as one", () => {
    expect(titleSchema.safeParse("x".repeat(500)).success).toBe(true);
    expect(titleSchema.safeParse("x".repeat(501)).success).toBe(false);
    expect(titleSchema.safeParse("😀".repeat(500)).success).toBe(true);
    expect(titleSchema.safeParse("😀".repeat(501)).success).toBe(false);
  });

  test.each(["", "   ", "\u0000", "a\u0000b", "a\nb", "a\u0007b", "a\u001bb", "a\u007fb", "a\u0085b"])(
    "title %j is refused",
    (title) => {
      expect(titleSchema.safeParse(title).success).toBe(false);
    },
  );

  test("create refuses unknown fields and a non-boolean done", () => {
    expect(createTaskSchema.safeParse({ title: "a", priority: 1 }).success).toBe(false);
    expect(createTaskSchema.safeParse({ title: "a", done: "yes" }).success).toBe(false);
    expect(createTaskSchema.parse({ title: "a" })).toEqual({ title: "a" });
  });

  test("update needs at least one field", () => {
    expect(updateTaskSchema.safeParse({}).success).toBe(false);
    expect(updateTaskSchema.parse({ done: true })).toEqual({ done: true });
  });

  test("list query accepts limit 1..200 and a numeric cursor, nothing else", () => {
    expect(listQuerySchema.parse({ limit: "200", cursor: "15" })).toEqual({ limit: 200, cursor: 15 });
    for (const limit of ["0", "201", "abc", "1.5", "-1"]) expect(listQuerySchema.safeParse({ limit }).success).toBe(false);
    expect(listQuerySchema.safeParse({ page: "2" }).success).toBe(false);
  });
});

describe("titles with broken Unicode", () => {
  test("a lone surrogate half is refused, a whole emoji is not", () => {
    expect(titleSchema.safeParse("a\ud800b").success).toBe(false);
    expect(titleSchema.safeParse("a\udc00").success).toBe(false);
    expect(titleSchema.safeParse("a😀b").success).toBe(true);
  });
});

describe("titles that would show as nothing, or as something else", () => {
  /** The messages a title is refused with, or [] when it is accepted. */
  function refusals(title: string): string[] {
    const result = titleSchema.safeParse(title);
    return result.success ? [] : result.error.issues.map((i) => i.message);
  }

  test.each([
    ["zero-width space", "\u200b"],
    ["zero-width non-joiner and joiner", "\u200c\u200d"],
    ["word joiner", "\u2060"],
    ["byte order mark between zero-width spaces", "\u200b\ufeff\u200b"],
    ["combining marks only", "\u0301\u0308"],
    ["combining marks after a zero-width space", "\u200b\u0301"],
    ["ideographic space and no-break space", "\u3000\u00a0"],
    ["Hangul filler", "\u3164"],
    ["blank Braille cell", "\u2800"],
    ["variation selector", "\ufe0f"],
  ])("a title of only a %s is refused for having nothing visible", (_label, title) => {
    expect(refusals(title)).toEqual([expect.stringMatching(/visible character|must not be empty/)]);
  });

  test("whitespace-only titles, U+3000 and U+00A0 included, keep the one 'empty' message", () => {
    expect(refusals("\u3000")).toEqual(["Title must not be empty."]);
    expect(refusals(" \u00a0 ")).toEqual(["Title must not be empty."]);
  });

  test("a title of zero-width characters says it needs a visible character", () => {
    expect(refusals("\u200b\u200c\u200d\u2060")).toEqual(["Title must contain at least one visible character."]);
  });

  test.each(["buy milk", "e\u0301t\u00e9", "😀", "👍🏽", "👩‍💻 code review", "日本語", "שלום", "a\u200bb", "a\u00a0b", "x\u2800y"])(
    "title %j, with something visible, is accepted",
    (title) => {
      expect(refusals(title)).toEqual([]);
    },
  );

  test.each(["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"])(
    "a bidirectional override or isolate %j is refused, and the message names it",
    (control) => {
      const name = `U+${control.codePointAt(0)!.toString(16).toUpperCase()}`;
      expect(refusals(`invoice${control}fdp.exe`)).toEqual([`Titles can't contain the bidirectional control ${name}.`]);
    },
  );

  test("the message names the first bidirectional control in the title", () => {
    expect(refusals("a\u2066b\u202ec")).toEqual(["Titles can't contain the bidirectional control U+2066."]);
  });

  test("left-to-right and right-to-left marks, which reorder nothing around them, are allowed", () => {
    expect(refusals("\u200fשלום\u200e")).toEqual([]);
  });

  test("create and update apply the same title rules", () => {
    expect(createTaskSchema.safeParse({ title: "\u200b" }).success).toBe(false);
    expect(updateTaskSchema.safeParse({ title: "\u200b" }).success).toBe(false);
    expect(createTaskSchema.safeParse({ title: "pay \u202erent" }).success).toBe(false);
    expect(updateTaskSchema.safeParse({ title: "pay \u202erent" }).success).toBe(false);
  });

  test("a control character is reported once, not also as nothing visible", () => {
    expect(refusals("\u0007")).toEqual(["Title must not contain control characters."]);
  });
});
