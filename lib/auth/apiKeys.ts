import "server-only";
import { createHash } from "node:crypto";
import { z } from "zod";
import { MAX_CACHE_WRITE_AGE_MS, REVOCATION_TTL_SECONDS } from "../cache";
import type { TaskStore } from "../store/taskStore";
import { TaskError } from "../tasks/errors";
import { CONTROL_CHARS } from "../tasks/schema";
import * as queries from "./queries";

// API keys for programs. better-auth's api-key plugin makes them (random secret, stored only as its
// SHA-256 hash); checking one is ours, because the plugin writes Postgres on every check. Ours
// reads the cache: `apikey:<hash>` holds the owner, filled from Postgres on a miss and *revoked*
// (see lib/auth/storage.ts) when the key is deleted, so a deleted key stops working at once on
// every instance and a check that read Postgres just before the delete can't bring it back.

export const API_KEY_PREFIX = "wtk_";
/** How long a verified key stays cached before Postgres is asked again. */
const KEY_CACHE_SECONDS = 3600;
const FILL_TICKET_SECONDS = Math.ceil(MAX_CACHE_WRITE_AGE_MS / 1000);
/** A key's "last used" time is written to the cache at most this often per instance. */
const LAST_USED_EVERY_MS = 60_000;

export const apiKeyNameSchema = z
  .string({ error: "name must be a string." })
  .trim()
  .min(1, { error: "name must not be empty." })
  .max(64, { error: "name must be at most 64 characters." })
  .refine((n) => !CONTROL_CHARS.test(n), { error: "name must not contain control characters." });

export const createApiKeySchema = z.strictObject(
  { name: apiKeyNameSchema },
  { error: (iss) => (iss.code === "unrecognized_keys" ? undefined : "Body must be a JSON object with a name.") },
);

export type ApiKeySummary = { id: string; name: string; createdAt: string; lastUsedAt?: string };

type CachedKey = { id: string; userId: string; expiresAt: string | null };

const keyCacheKey = (hash: string) => `apikey:${hash}`;
const lastUsedKey = (id: string) => `apikey-used:${id}`;
const lastUsedWritten = new Map<string, number>();

/**
 * How the api-key plugin stores a key: SHA-256, base64url without padding (its defaultKeyHasher,
 * which goes through WebCrypto's async digest: a promise and a thread-pool hop per request; this is
 * the same hash, computed in place).
 */
export function keyHash(key: string): string {
  return createHash("sha256").update(key).digest("base64url");
}

/** The owner of a presented key, or null when it is unknown, disabled, expired or revoked. */
export async function verifyApiKey(store: TaskStore, presented: string): Promise<{ userId: string; keyId: string } | null> {
  // A key we never hand out can't be valid: don't spend a lookup on it.
  if (!presented.startsWith(API_KEY_PREFIX) || presented.length > 200) return null;
  const hash = keyHash(presented);
  const cache = store.cache;
  let found: CachedKey | null = null;
  const trusted = cache !== null && (await store.authCacheTrusted());
  if (cache && trusted) {
    try {
      const raw = await cache.run("authGet", () => cache.driver.getValue(keyCacheKey(hash)), "api key");
      if (raw !== null) found = JSON.parse(raw) as CachedKey;
    } catch {
      // the cache is down: Postgres decides
    }
  }
  if (!found) {
    // The fill ticket is parked before Postgres is read: a revocation (or a flush) meanwhile
    // replaces it, and the fill then refuses itself.
    const ticket = cache && trusted ? await cache.run("authSet", () => cache.driver.beginFill(keyCacheKey(hash), FILL_TICKET_SECONDS), "api key").catch(() => null) : null;
    const startedAt = store.now();
    const row = await store.db(() => queries.findApiKeyByHash(store.database.db, { hash }), { count: false });
    if (!row || row.enabled === false) return null;
    found = { id: row.id, userId: row.userId, expiresAt: row.expiresAt?.toISOString() ?? null };
    if (cache && ticket && store.now() - startedAt <= MAX_CACHE_WRITE_AGE_MS) {
      const untilExpiry = found.expiresAt ? Math.floor((Date.parse(found.expiresAt) - store.now()) / 1000) : KEY_CACHE_SECONDS;
      const ttl = Math.min(KEY_CACHE_SECONDS, untilExpiry);
      const value = JSON.stringify(found);
      if (ttl > 0) await cache.run("authSet", () => cache.driver.fillValue(keyCacheKey(hash), value, ttl, ticket), "api key").catch(() => false);
    }
  }
  if (found.expiresAt && Date.parse(found.expiresAt) <= store.now()) return null;
  noteUse(store, found.id);
  return { userId: found.userId, keyId: found.id };
}

/** Remembers when a key was last used, in the cache only, at most once a minute per instance. */
function noteUse(store: TaskStore, keyId: string) {
  const cache = store.cache;
  const now = store.now();
  if (!cache || now - (lastUsedWritten.get(keyId) ?? 0) < LAST_USED_EVERY_MS) return;
  lastUsedWritten.set(keyId, now);
  if (lastUsedWritten.size > 10_000) lastUsedWritten.delete(lastUsedWritten.keys().next().value as string);
  void cache.run("authSet", () => cache.driver.setValue(lastUsedKey(keyId), new Date(now).toISOString(), 90 * 24 * 3600), "api key").catch(() => false);
}

export async function listApiKeys(store: TaskStore, userId: string): Promise<ApiKeySummary[]> {
  const rows = await store.db(() => queries.listApiKeys(store.database.db, { userId }), { count: false });
  const cache = store.cache;
  let used: Array<string | null> = rows.map(() => null);
  if (cache && rows.length > 0) {
    used = await Promise.all(rows.map((r) => cache.run("authGet", () => cache.driver.getValue(lastUsedKey(r.id)), "api key").catch(() => null)));
  }
  return rows.map((r, i) => {
    const lastUsedAt = used[i] ?? r.lastRequest?.toISOString();
    return { id: r.id, name: r.name ?? "", createdAt: r.createdAt.toISOString(), ...(lastUsedAt ? { lastUsedAt } : {}) };
  });
}

/** Deletes the user's key in Postgres, then revokes its cached copy (or records that revocation as owed). */
export async function revokeApiKey(store: TaskStore, userId: string, id: string): Promise<void> {
  const deleted = await store.db(() => queries.deleteApiKey(store.database.db, { userId, id }), { count: false });
  if (!deleted) throw new TaskError("not_found", `API key ${id} does not exist.`);
  const cache = store.cache;
  if (!cache) return;
  const key = keyCacheKey(deleted.hash);
  try {
    await cache.run("authDelete", () => cache.driver.revokeValue(key, REVOCATION_TTL_SECONDS), "api key");
  } catch (err) {
    await store.ledger.recordAuth(userId, key, err);
  }
}
