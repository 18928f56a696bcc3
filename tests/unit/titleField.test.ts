import { describe, expect, test } from "vitest";
import { checkTitle, TITLE_INPUT_MAX_LENGTH, titleError } from "@/app/_components/title";
import { TITLE_MAX_CHARS } from "@/lib/tasks/schema";

describe("the title field's checks (the add form and the inline editor share them)", () => {
  test.each(["create", "update"] as const)("%s: the same messages as the server", (kind) => {
    expect(titleError("   ", kind)).toBe("Title must not be empty.");
    expect(titleError("x".repeat(501), kind)).toBe("Title must be at most 500 characters.");
    expect(titleError("a\u0007b", kind)).toBe("Title must not contain control characters.");
    expect(titleError("Buy milk", kind)).toBeNull();
    expect(checkTitle("  Buy milk \t", kind)).toEqual({ ok: true, title: "Buy milk" });
  });

  test("maxlength lets 500 emoji in (HTML counts UTF-16 units), and 501 plain characters so the error shows", () => {
    expect(TITLE_INPUT_MAX_LENGTH).toBeGreaterThanOrEqual("😀".repeat(TITLE_MAX_CHARS).length);
    expect(TITLE_INPUT_MAX_LENGTH).toBeGreaterThan(TITLE_MAX_CHARS);
    expect(checkTitle("😀".repeat(TITLE_MAX_CHARS), "create").ok).toBe(true);
  });
});
