import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { Redis } from "ioredis";

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
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = uniqueName("wtt");
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const a = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** Deletes every key under `prefix` (never FLUSHDB: the Redis is shared). */
export async function deleteKeysWithPrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
