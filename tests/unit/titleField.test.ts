import { describe, expect, test } from "vitest";
import { checkTitle, TITLE_COUNTER_FROM, TITLE_INPUT_MAX_LENGTH, titleCounter, titleError } from "@/app/_components/title";
import { checkDue } from "@/app/_components/due";
import { createTaskSchema, dueOnSchema, TITLE_MAX_CHARS, updateTaskSchema } from "@/lib/tasks/schema";

// Titles and due dates with every kind of problem, alone and together.
const TITLES = ["", " ", "ok", "  padded  ", "a".repeat(500), "a".repeat(501), "é".repeat(501), "x\u0000y", "\u0007", "\ud800", "a\ud800b", "\u202e", "ab\u2066cd", "\u200b", " \u0301", "\u2800", `${"a".repeat(501)}\u0000`, "\u0000\ud800", "\u202e\u0000", `\u202e${"a".repeat(600)}`, "\ufeff", "😀".repeat(501), "\n x \n"];
const DUES = ["2026-02-28", "2026-02-30", "1999-12-31", "2000-01-01", "2100-12-31", "2101-01-01", "26-1-1", "2026-1-01", "abcd-ef-gh", "2026-02-28T00:00"];

describe("the title field's checks (the add form and the inline editor share them)", () => {
  test.each(["create", "update"] as const)("%s: the same messages as the server", (kind) => {
    expect(titleError("   ", kind)).toBe("Title must not be empty.");
    expect(titleError("x".repeat(501), kind)).toBe("Title must be at most 500 characters.");
    expect(titleError("a\u0007b", kind)).toBe("Title must not contain control characters.");
    expect(titleError("Buy milk", kind)).toBeNull();
    expect(checkTitle("  Buy milk \t", kind)).toEqual({ ok: true, title: "Buy milk" });
  });

  test("the page's checks (no zod in its JavaScript) give the server's schemas' verdict and first message, for every input", () => {
    for (const [kind, schema] of [["create", createTaskSchema], ["update", updateTaskSchema]] as const) {
      for (const title of TITLES) {
        const server = schema.safeParse({ title });
        expect(checkTitle(title, kind), JSON.stringify(title)).toEqual(server.success ? { ok: true, title: server.data.title } : { ok: false, message: server.error.issues[0]?.message });
      }
    }
    for (const due of DUES) expect(checkDue(due).ok, due).toBe(dueOnSchema.safeParse(due).success);
  });

  test("maxlength lets 500 emoji in (HTML counts UTF-16 units), and 501 plain characters so the error shows", () => {
    expect(TITLE_INPUT_MAX_LENGTH).toBeGreaterThanOrEqual("😀".repeat(TITLE_MAX_CHARS).length);
    expect(TITLE_INPUT_MAX_LENGTH).toBeGreaterThan(TITLE_MAX_CHARS);
    expect(checkTitle("😀".repeat(TITLE_MAX_CHARS), "create").ok).toBe(true);
  });
});

describe("the title field's counter near the limit", () => {
  test("stays hidden and silent far from the limit", () => {
    expect(TITLE_COUNTER_FROM).toBe(400);
    expect(titleCounter("")).toEqual({ count: 0, text: null, announcement: null, over: false });
    expect(titleCounter("x".repeat(399))).toMatchObject({ count: 399, text: null, announcement: null });
  });

  test("from 400 of 500 characters on shows the count and words for a screen reader", () => {
    expect(titleCounter("x".repeat(420))).toEqual({
      count: 420,
      text: "420 / 500",
      announcement: "420 of 500 characters, 80 left.",
      over: false,
    });
    expect(titleCounter("x".repeat(500))).toMatchObject({ text: "500 / 500", over: false });
    expect(titleCounter("x".repeat(512))).toEqual({
      count: 512,
      text: "512 / 500",
      announcement: "512 of 500 characters: 12 too many.",
      over: true,
    });
  });

  test("counts as the schema does: the trimmed title, an emoji as one character", () => {
    expect(titleCounter(`  ${"x".repeat(420)}   `).count).toBe(420);
    expect(titleCounter("😀".repeat(450))).toMatchObject({ count: 450, text: "450 / 500" });
    // The counter and the schema agree on where the limit is.
    expect(titleCounter("😀".repeat(500)).over).toBe(false);
    expect(checkTitle("😀".repeat(500), "create").ok).toBe(true);
    expect(titleCounter("😀".repeat(501)).over).toBe(true);
    expect(checkTitle("😀".repeat(501), "create").ok).toBe(false);
  });
});
