import "server-only";
import { and, desc, eq, gt } from "drizzle-orm";
import type { Db } from "../db/client";
import { apikey, session, user } from "../db/schema";

// The SQL our own auth code runs beside better-auth's adapter: the session read-through, and the
// API-key lookups the cached verification needs. One statement each.

/** A session and its user, by token, in the shape better-auth keeps in secondary storage. */
export async function findSessionWithUser(db: Db, { token }: { token: string }) {
  const [row] = await db.select({ session, user }).from(session).innerJoin(user, eq(session.userId, user.id)).where(eq(session.token, token));
  return row;
}

/** Whether a session with this token is in Postgres (and so not signed out or revoked). */
export async function sessionExists(db: Db, { token }: { token: string }): Promise<boolean> {
  const [row] = await db.select({ id: session.id }).from(session).where(eq(session.token, token));
  return row !== undefined;
}

/** The user's unexpired sessions: better-auth's "active sessions" list, read from the source of truth. */
export async function listActiveSessions(db: Db, { userId, now }: { userId: string; now: Date }) {
  return db
    .select({ token: session.token, expiresAt: session.expiresAt })
    .from(session)
    .where(and(eq(session.userId, userId), gt(session.expiresAt, now)));
}

/** An API key by the hash of its secret. */
export async function findApiKeyByHash(db: Db, { hash }: { hash: string }) {
  const [row] = await db
    .select({ id: apikey.id, userId: apikey.referenceId, enabled: apikey.enabled, expiresAt: apikey.expiresAt })
    .from(apikey)
    .where(eq(apikey.key, hash));
  return row;
}

/** The user's keys, newest first, without their hashes. */
export async function listApiKeys(db: Db, { userId }: { userId: string }) {
  return db
    .select({ id: apikey.id, name: apikey.name, createdAt: apikey.createdAt, lastRequest: apikey.lastRequest })
    .from(apikey)
    .where(eq(apikey.referenceId, userId))
    .orderBy(desc(apikey.createdAt), desc(apikey.id));
}

/** Deletes the user's key `id`; returns its hash (to revoke the cached copy), or undefined when the user has no such key. */
export async function deleteApiKey(db: Db, { userId, id }: { userId: string; id: string }) {
  const [row] = await db
    .delete(apikey)
    .where(and(eq(apikey.id, id), eq(apikey.referenceId, userId)))
    .returning({ hash: apikey.key });
  return row;
}
