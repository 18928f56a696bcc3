import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, test } from "vitest";
import { resolveAuthSecret } from "@/lib/auth/secret";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempFile = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "wtt-secret-"));
  dirs.push(dir);
  return path.join(dir, ".data", "auth-secret");
};

test("BETTER_AUTH_SECRET is used when set", () => {
  const secret = "s".repeat(40);
  expect(resolveAuthSecret({ BETTER_AUTH_SECRET: secret, NODE_ENV: "production" }, tempFile())).toBe(secret);
});

test("in production a missing BETTER_AUTH_SECRET stops start-up with a message naming it", () => {
  expect(() => resolveAuthSecret({ BETTER_AUTH_SECRET: undefined, NODE_ENV: "production" }, tempFile())).toThrow(
    /^Invalid environment configuration:\n  BETTER_AUTH_SECRET: is required in production/,
  );
});

test("in development a secret is made once, kept in .data, and reused", () => {
  const file = tempFile();
  const first = resolveAuthSecret({ BETTER_AUTH_SECRET: undefined, NODE_ENV: "development" }, file);
  expect(first.length).toBeGreaterThanOrEqual(32);
  expect(readFileSync(file, "utf8").trim()).toBe(first);
  expect(resolveAuthSecret({ BETTER_AUTH_SECRET: undefined, NODE_ENV: "development" }, file)).toBe(first);
});
