import { describe, expect, test } from "vitest";
import { safeNextPath } from "@/lib/auth/session";

// Where /sign-in sends a person afterwards (?next=): only ever a path on this site.
describe("safeNextPath", () => {
  test.each(["/", "/cache", "/cache?ids=1,2", "/a/b#top", "/%2F%2Fevil.com"])("keeps a path on this site: %s", (next) => {
    const kept = safeNextPath(next);
    expect(new URL(kept, "http://app.test").origin).toBe("http://app.test");
    expect(kept).toBe(next);
  });

  test.each([
    "//evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r/evil.com",
    "https://evil.com",
    "javascript:alert(1)",
    "evil.com",
    "",
    "/\u0000",
  ])("sends anything that could leave the site to the task page: %j", (next) => {
    expect(safeNextPath(next)).toBe("/");
  });

  test("takes the first of several values, and the task page when there is none", () => {
    expect(safeNextPath(["/cache", "//evil.com"])).toBe("/cache");
    expect(safeNextPath(undefined)).toBe("/");
  });
});
