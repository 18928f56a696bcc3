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
