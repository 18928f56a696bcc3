import "server-only";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { TaskStore } from "../store/taskStore";

// The hot path of a signed-in request: the same checks better-auth's getSession makes for a session
// it finds in the cache (a valid cookie signature, a cached session that has not expired and needs
// no refresh), without its per-call endpoint machinery. Everything else (no cached copy, a
// revocation marker, a session due for its daily refresh, a cache that can't be trusted) goes to
// better-auth itself. See docs/decisions/007-sessions-and-api-keys-in-the-cache.md.

/** Session lifetime and refresh age, shared with the better-auth configuration (lib/auth/index.ts). */
export const SESSION_EXPIRES_IN_SECONDS = 7 * 24 * 3600;
export const SESSION_UPDATE_AGE_SECONDS = 24 * 3600;

const COOKIE = "better-auth.session_token";
const SIGNATURE = /^[A-Za-z0-9+/]{43}=$/;

function cookieValue(header: string, name: string): string | null {
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** The session token from a signed session cookie, or null when absent or its signature is wrong. */
export function sessionTokenOf(cookieHeader: string, secret: string, secure: boolean): string | null {
  const raw = cookieValue(cookieHeader, secure ? `__Secure-${COOKIE}` : COOKIE);
  if (!raw) return null;
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return null;
  }
  const dot = value.lastIndexOf(".");
  if (dot < 1) return null;
  const token = value.slice(0, dot);
  // Exactly what better-call signs: standard base64 of a SHA-256 HMAC, padded (44 characters).
  // Node's decoder would also take base64url, a missing pad or stray characters.
  const encoded = value.slice(dot + 1);
  if (!SIGNATURE.test(encoded)) return null;
  const signature = Buffer.from(encoded, "base64");
  const expected = createHmac("sha256", secret).update(token).digest();
  return signature.length === expected.length && timingSafeEqual(signature, expected) ? token : null;
}

type CachedSession = { session: { expiresAt: string; userId: string }; user: { id: string; email: string; name: string } };

/**
 * The signed-in user, from the cache alone, when that is exactly what better-auth would answer;
 * undefined when better-auth must decide.
 */
export async function sessionFromCache(store: TaskStore, token: string): Promise<{ userId: string; email: string; name: string } | undefined> {
  const cache = store.cache;
  if (!cache || !(await store.authCacheTrusted())) return undefined;
  let raw: string | null;
  try {
    raw = await cache.run("authGet", () => cache.driver.getValue(token), "session");
  } catch {
    return undefined;
  }
  if (raw === null) return undefined;
  let cached: CachedSession;
  try {
    cached = JSON.parse(raw) as CachedSession;
  } catch {
    return undefined;
  }
  const expiresAt = Date.parse(cached.session?.expiresAt);
  const now = store.now();
  if (!(expiresAt > now)) return undefined;
  // Due for its refresh: better-auth extends it (and rewrites the cookie).
  if (expiresAt - SESSION_EXPIRES_IN_SECONDS * 1000 + SESSION_UPDATE_AGE_SECONDS * 1000 <= now) return undefined;
  if (typeof cached.user?.id !== "string" || cached.user.id !== cached.session.userId || typeof cached.user.name !== "string") return undefined;
  return { userId: cached.user.id, email: cached.user.email, name: cached.user.name };
}
