import "server-only";
import type { SecondaryStorage } from "@better-auth/core/db";
import { MAX_CACHE_WRITE_AGE_MS, REVOCATION_TTL_SECONDS } from "../cache";
import type { TaskStore } from "../store/taskStore";
import * as queries from "./queries";

/** better-auth's session tokens are its bare random ids; its other keys carry a separator. */
const SESSION_TOKEN = /^[A-Za-z0-9]{16,128}$/;
/** better-auth's list of a user's sessions, which it reads to find what to delete on "revoke all". */
const ACTIVE_SESSIONS = "active-sessions-";
/** A fill ticket outlives any fill the protocol still trusts (MAX_CACHE_WRITE_AGE_MS). */
const FILL_TICKET_SECONDS = Math.ceil(MAX_CACHE_WRITE_AGE_MS / 1000);

/**
 * better-auth's secondary storage, on the app's cache (and its breaker). Sessions are kept in
 * Postgres too (storeSessionInDatabase), which stays the source of truth:
 * - a read that the cache can't answer returns null, and better-auth reads Postgres instead, so
 *   sign-in and every authenticated request work with the cache down;
 * - a session-token miss is filled from Postgres (read-through) under a fill ticket, so a sign-out
 *   or a flush that lands while the fill reads Postgres makes it refuse itself;
 * - a refresh only replaces a session the cache still holds; a new session is written only once
 *   Postgres has it; so neither can put back a session a flushed cache forgot was revoked;
 * - a deleted session token is *revoked* in the cache (a marker no fill can overwrite), and a
 *   revocation the cache did not take is recorded in the repair ledger; until it is carried out
 *   this instance trusts no cached auth value, and every instance carries it out from the table;
 * - the per-user list of sessions is never cached: it is read from Postgres each time, so
 *   "sign out everywhere" and a password change revoke every session, not just the ones a cached
 *   list (lost in a flush, or never filled) happened to name.
 */
export function createAuthStorage(store: TaskStore): SecondaryStorage | undefined {
  const cache = store.cache;
  if (!cache) return undefined;
  const driver = cache.driver;

  /**
   * Writes `value` for `token` only while nothing else claims the key, and only if Postgres has
   * the session after the ticket was parked: a revocation (marker) or flush meanwhile wins.
   */
  const fillChecked = async (token: string, value: () => Promise<{ value: string; ttlSeconds: number } | null>) => {
    const ticket = await cache.run("authSet", () => driver.beginFill(token, FILL_TICKET_SECONDS), "session").catch(() => null);
    const startedAt = store.now();
    const found = await value();
    if (!found || !ticket || store.now() - startedAt > MAX_CACHE_WRITE_AGE_MS) return found?.value ?? null;
    await cache.run("authSet", () => driver.fillValue(token, found.value, found.ttlSeconds, ticket), "session").catch(() => false);
    return found.value;
  };

  /** A session and its user from Postgres, in better-auth's cached shape. */
  const readSession = async (token: string) => {
    const row = await queries.findSessionWithUser(store.database.db, { token });
    if (!row) return null;
    const ttlSeconds = Math.floor((row.session.expiresAt.getTime() - store.now()) / 1000);
    return ttlSeconds > 0 ? { value: JSON.stringify({ session: row.session, user: row.user }), ttlSeconds } : null;
  };

  return {
    async get(key) {
      if (key.startsWith(ACTIVE_SESSIONS)) {
        const rows = await queries.listActiveSessions(store.database.db, { userId: key.slice(ACTIVE_SESSIONS.length), now: new Date(store.now()) });
        return JSON.stringify(rows.map((r) => ({ token: r.token, expiresAt: r.expiresAt.getTime() })));
      }
      if (!(await store.authCacheTrusted())) return null;
      let value: string | null;
      try {
        value = await cache.run("authGet", () => driver.getValue(key), "auth value");
      } catch {
        return null; // better-auth reads Postgres
      }
      if (value !== null || !SESSION_TOKEN.test(key)) return value;
      // A miss, or a revoked token (which reads as a miss): Postgres decides. A revoked session has
      // no row, so nothing is filled and better-auth finds nothing either.
      return fillChecked(key, () => readSession(key));
    },
    async set(key, value, ttl) {
      if (key.startsWith(ACTIVE_SESSIONS)) return;
      try {
        if (!SESSION_TOKEN.test(key)) {
          await cache.run("authSet", () => driver.setValue(key, value, ttl), "auth value");
          return;
        }
        const ttlSeconds = ttl ?? REVOCATION_TTL_SECONDS;
        // A refresh (or a user update) of a session the cache holds: replace it.
        if (await cache.run("authSet", () => driver.replaceValue(key, value, ttlSeconds), "session")) return;
        // Not held: a new session (better-auth writes Postgres first), or one a flush forgot,
        // maybe revoked meanwhile. Only a session Postgres still has goes in.
        await fillChecked(key, async () => ((await queries.sessionExists(store.database.db, { token: key })) ? { value, ttlSeconds } : null));
      } catch {
        // The value is in Postgres; a later read fills it in.
      }
    },
    async delete(key) {
      if (key.startsWith(ACTIVE_SESSIONS)) return;
      const revocable = SESSION_TOKEN.test(key);
      try {
        if (revocable) await cache.run("authDelete", () => driver.revokeValue(key, REVOCATION_TTL_SECONDS), "session");
        else await cache.run("authDelete", () => driver.deleteValue(key), "auth value");
      } catch (err) {
        // Never throw: better-auth deletes the Postgres row after this call, and that must happen.
        // The row is still there, so it names the owner (whose cache lab shows the repair).
        if (!revocable) return;
        const owner = await queries.findSessionWithUser(store.database.db, { token: key }).catch(() => undefined);
        await store.ledger.recordAuth(owner?.session.userId ?? "", key, err);
      }
    },
    async getAndDelete(key) {
      try {
        return await cache.run("authGet", () => driver.getAndDeleteValue(key), "auth value");
      } catch {
        return null;
      }
    },
    async increment(key, ttl) {
      return cache.run("authSet", () => driver.incrementValue(key, ttl), "auth counter");
    },
  };
}
