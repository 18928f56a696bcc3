import type { SecondaryStorage } from "@better-auth/core/db";
import { MAX_CACHE_WRITE_AGE_MS, REVOCATION_TTL_SECONDS } from "../cache";
import type { TaskStore } from "../store/taskStore";
import * as queries from "./queries";

/** better-auth's session tokens are its bare random ids; its other keys carry a separator. */
const SESSION_TOKEN = /^[A-Za-z0-9]{16,128}$/;

/**
 * better-auth's secondary storage, on the app's cache (and its breaker). Sessions are kept in
 * Postgres too (storeSessionInDatabase), which stays the source of truth:
 * - a read that the cache can't answer returns null, and better-auth reads Postgres instead, so
 *   sign-in and every authenticated request work with the cache down;
 * - a session-token miss is filled from Postgres (read-through), so after a flush or restart the
 *   next request is the last one that costs a Postgres statement;
 * - a deleted session token is *revoked* in the cache (a marker no fill can overwrite), and a
 *   revocation the cache did not take is recorded in the repair ledger; until it is carried out
 *   this instance trusts no cached auth value, and every instance carries it out from the table.
 */
export function createAuthStorage(store: TaskStore): SecondaryStorage | undefined {
  const cache = store.cache;
  if (!cache) return undefined;
  const driver = cache.driver;

  /** Reads a session from Postgres and fills it in, unless it was revoked meanwhile. */
  const fillSession = async (token: string): Promise<string | null> => {
    const startedAt = store.now();
    const row = await queries.findSessionWithUser(store.database.db, { token });
    if (!row) return null;
    const ttlSeconds = Math.floor((row.session.expiresAt.getTime() - store.now()) / 1000);
    if (ttlSeconds <= 0) return null;
    const value = JSON.stringify({ session: row.session, user: row.user });
    if (store.now() - startedAt <= MAX_CACHE_WRITE_AGE_MS) {
      await cache.run("authSet", () => driver.fillValue(token, value, ttlSeconds), "session").catch(() => false);
    }
    return value;
  };

  return {
    async get(key) {
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
      return fillSession(key);
    },
    async set(key, value, ttl) {
      try {
        await cache.run("authSet", () => driver.setValue(key, value, ttl), "auth value");
      } catch {
        // The value is in Postgres; a later read fills it in.
      }
    },
    async delete(key) {
      const revocable = SESSION_TOKEN.test(key);
      try {
        if (revocable) await cache.run("authDelete", () => driver.revokeValue(key, REVOCATION_TTL_SECONDS), "session");
        else await cache.run("authDelete", () => driver.deleteValue(key), "auth value");
      } catch (err) {
        // Never throw: better-auth deletes the Postgres row after this call, and that must happen.
        if (revocable) await store.ledger.recordAuth("", key, err);
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
