import { randomBytes } from "node:crypto";
import { everythingPattern } from "@/lib/cache/keys";
import { createDatabase, deleteKeysMatching } from "../../scripts/lib/services.mjs";

/**
 * Where the integration tests find real Postgres and Redis. scripts/test.mjs checks they answer
 * (or starts them) and exports these; the defaults are the local servers.
 */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL || "redis://127.0.0.1:6379";

/** Set by scripts/test.mjs for one run: every name made carries it, so the run can check it left none behind. */
const RUN_ID = process.env.TEST_RUN_ID ? `${process.env.TEST_RUN_ID}_` : "";

export function uniqueName(prefix: string): string {
  return `${prefix}_${RUN_ID}${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
}

/** A fresh database of our own on the shared server (never the shared databases), dropped by `drop()`. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  return createDatabase(TEST_DATABASE_URL, uniqueName("wtt"));
}

/** Deletes every key under `prefix` (never FLUSHDB: the Redis is shared). */
export async function deleteKeysWithPrefix(redisUrl: string, prefix: string): Promise<void> {
  await deleteKeysMatching(redisUrl, everythingPattern(prefix));
}
