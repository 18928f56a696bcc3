import "server-only";
import { apiKey } from "@better-auth/api-key";
import { betterAuth } from "better-auth";
import { drizzleAdapter } from "better-auth/adapters/drizzle";
import { nextCookies } from "better-auth/next-js";
import { account, apikey, session, user, verification } from "../db/schema";
import { isDatabaseUnavailable } from "../db/errors";
import { env } from "../env";
import { log } from "../log";
import type { TaskStore } from "../store/taskStore";
import { isTaskError, TaskError } from "../tasks/errors";
import { z } from "zod";
import { parseWith, readJsonBody } from "../http/responses";
import { clientAddress } from "../http/clientAddress";
import { rateLimited, RateLimiter, type Attempt } from "../rateLimit";
import { CONTROL_CHARS, countChars } from "../tasks/schema";
import { getTaskStore } from "../taskStore";
import { API_KEY_PREFIX, verifyApiKey } from "./apiKeys";
import { checkOrigin, requestOrigin, SAFE_METHODS } from "./origin";
import { resolveAuthSecret } from "./secret";
import { sessionFromCache, sessionTokenOf, SESSION_EXPIRES_IN_SECONDS, SESSION_UPDATE_AGE_SECONDS } from "./fastSession";
import { createAuthStorage } from "./storage";

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;
export const NAME_MAX = 100;

/** An account's name, checked by us at sign-up (better-auth checks the email and password); parsed as a field, so a refusal names `name`. */
const accountNameBodySchema = z.object({
  name: z
    .string()
    .trim()
    .min(1, { error: "Enter your name." })
    .refine((n) => countChars(n) <= NAME_MAX, { error: `A name must be at most ${NAME_MAX} characters.` })
    .refine((n) => !CONTROL_CHARS.test(n), { error: "A name must not contain control characters." }),
});

/**
 * better-auth over the store's database and cache: email + password accounts, cookie sessions kept
 * in Postgres and cached (./storage.ts), API keys made by its api-key plugin (checked by
 * ./apiKeys.ts). Its own rate limiter is off: ours (lib/rateLimit) covers sign-in, sign-up and
 * writes with the limits and error shape the API documents.
 */
export function createAuth(store: TaskStore, options: { secret: string; baseURL?: string }) {
  return betterAuth({
    appName: "writethrough-tasks",
    secret: options.secret,
    baseURL: options.baseURL,
    // Without a configured URL, the app's own origin is the host the request was sent to (what
    // the browser's Origin header names), not the host Next.js reports (`localhost`).
    trustedOrigins: options.baseURL ? [] : async (request) => (request ? [requestOrigin(request)] : []),
    database: drizzleAdapter(store.database.db, { provider: "pg", schema: { user, session, account, verification, apikey } }),
    secondaryStorage: createAuthStorage(store),
    session: {
      expiresIn: SESSION_EXPIRES_IN_SECONDS,
      updateAge: SESSION_UPDATE_AGE_SECONDS,
      // Postgres stays the source of truth for sessions; the cache holds copies.
      storeSessionInDatabase: true,
      // No session data in a signed cookie: a sign-out must take effect at once, on every instance.
      cookieCache: { enabled: false },
    },
    verification: { storeInDatabase: true },
    emailAndPassword: { enabled: true, minPasswordLength: PASSWORD_MIN, maxPasswordLength: PASSWORD_MAX, autoSignIn: true },
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    advanced: {
      // Secure (and __Secure- prefixed) exactly when the app's public URL is https. Left to
      // better-auth, it would mark them Secure in every production build, and a browser on plain
      // http (a LAN, `docker compose up` on a laptop) would never send them back.
      useSecureCookies: options.baseURL?.startsWith("https:") ?? false,
    },
    logger: {
      // better-auth's own messages go to our log, at debug for its routine ones ("Invalid password").
      log: (level, message) => (level === "error" ? log.error(`auth: ${message}`) : log.debug(`auth: ${message}`)),
    },
    plugins: [
      apiKey({
        defaultPrefix: API_KEY_PREFIX,
        rateLimit: { enabled: false },
        enableMetadata: false,
        maximumNameLength: 64,
        storage: "database",
      }),
      // Last: lets server actions set the cookies better-auth returns.
      nextCookies(),
    ],
  });
}

export type Auth = ReturnType<typeof createAuth>;

const holder = globalThis as unknown as { __auth?: Promise<Auth> };

/** The process-wide auth, over the process-wide store; a failed open is retried next call. */
export function getAuth(): Promise<Auth> {
  holder.__auth ??= getTaskStore()
    .then((store) => createAuth(store, { secret: resolveAuthSecret(), baseURL: env.BETTER_AUTH_URL }))
    .catch((err: unknown) => {
      holder.__auth = undefined;
      throw err;
    });
  return holder.__auth;
}

/** The process-wide rate limiter, counting in the process-wide store's cache. */
export async function getRateLimiter(): Promise<RateLimiter> {
  const holder2 = globalThis as unknown as { __rateLimiter?: RateLimiter };
  if (holder2.__rateLimiter) return holder2.__rateLimiter;
  const store = await getTaskStore();
  return (holder2.__rateLimiter ??= rateLimiterFor(store));
}

export function rateLimiterFor(store: TaskStore, disabled = env.RATE_LIMIT_DISABLED): RateLimiter {
  return new RateLimiter({
    cache: store.cache,
    disabled,
    limits: {
      signInFailuresPerIp: env.RATE_LIMIT_SIGN_IN_FAILURES_PER_IP,
      signInFailuresPerEmail: env.RATE_LIMIT_SIGN_IN_FAILURES_PER_EMAIL,
      signUpsPerIp: env.RATE_LIMIT_SIGN_UPS_PER_IP,
      writesPerUser: env.RATE_LIMIT_WRITES_PER_USER,
    },
  });
}

const TOO_MANY_WRITES = "Too many changes in a short time. Wait a moment and try again.";

/** Counts a write by `principal` against the per-user limit (429 past it); reads are not limited. */
export async function limitWrites(req: Request, principal: Principal, limiter: RateLimiter): Promise<void> {
  if (SAFE_METHODS.has(req.method)) return;
  await limiter.enforce("writesPerUser", principal.userId, TOO_MANY_WRITES);
}

/**
 * The task store of the person signed in, for a server action (its request's headers): like
 * `tasksForWith` for the API, a write counts against the per-user limit and a read does not. No
 * session (signed out, maybe in another tab): `unauthorized`. Actions keep Next's own origin check.
 */
export function actionTasksWith(deps: { store: () => Promise<TaskStore>; auth: () => Promise<Auth>; limiter: () => Promise<RateLimiter> }) {
  return async (headers: Headers, access: "read" | "write") => {
    const store = await deps.store();
    // Every action arrives as a POST; this method only says whether this one writes.
    const req = new Request("http://server-action.local/", { method: access === "write" ? "POST" : "GET", headers });
    const principal = await authenticate(req, { store, auth: deps.auth });
    if (!principal) throw new TaskError("unauthorized", "Your session has ended. Sign in again.");
    await limitWrites(req, principal, await deps.limiter());
    return store.forUser(principal.userId);
  };
}

/** `actionTasksWith` the process-wide store, auth and limiter: what app/actions.ts uses. */
export const actionTasks = actionTasksWith({ store: getTaskStore, auth: getAuth, limiter: getRateLimiter });

const TOO_MANY_SIGN_INS = "Too many failed sign-ins. Wait a few minutes and try again.";

/**
 * The body of a sign-in or sign-up, as JSON only: better-auth also takes forms, and an email we
 * could not read is an email we could not limit.
 */
async function credentialsBody(req: Request): Promise<{ email?: unknown; name?: unknown }> {
  const mediaType = req.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  if (mediaType !== "application/json") {
    throw new TaskError("unsupported_media_type", "Send the body as JSON with Content-Type: application/json.");
  }
  // A clone: better-auth reads the same bytes, with the same JSON.parse, after us.
  const body = await readJsonBody(req.clone());
  return typeof body === "object" && body !== null ? body : {};
}

/**
 * better-auth's sign-in and sign-up behind our limits: failed sign-ins per address and per email
 * (once over, even the right password waits), sign-ups per address. A sign-in is counted before
 * the password is checked, so parallel guesses can't all pass a check made before any of them
 * failed, and given back unless it failed: only wrong passwords (401) use up the budget. Anyone
 * who knows an email can so keep its owner from signing in for a window; that is what a per-email
 * limit is (README, "Abuse limits").
 */
export async function limitedAuthHandler(req: Request, auth: Auth, limiter: RateLimiter, trustedProxyHops: number = env.TRUSTED_PROXY_HOPS): Promise<Response> {
  const path = new URL(req.url).pathname;
  const signUp = path.endsWith("/sign-up/email");
  if (req.method !== "POST" || !(signUp || path.endsWith("/sign-in/email"))) return auth.handler(req);
  const body = await credentialsBody(req);
  const ip = clientAddress(req, trustedProxyHops);
  if (signUp) {
    // better-auth checks the email and the password; the name is ours to check.
    if (typeof body.name === "string") parseWith(accountNameBodySchema, { name: body.name });
    await limiter.enforce("signUpsPerIp", ip, "Too many accounts made from this address. Try again later.");
    return auth.handler(req);
  }
  const email = typeof body.email === "string" ? body.email.trim().toLowerCase() : "";
  const attempts: Attempt[] = await Promise.all([
    limiter.attempt("signInFailuresPerIp", ip),
    ...(email ? [limiter.attempt("signInFailuresPerEmail", email)] : []),
  ]);
  let failed = false;
  try {
    const waits = attempts.flatMap((a) => (a.verdict.allowed ? [] : [a.verdict.retryAfterSeconds]));
    if (waits.length > 0) throw rateLimited(TOO_MANY_SIGN_INS, Math.max(...waits));
    const res = await auth.handler(req);
    failed = res.status === 401;
    return res;
  } finally {
    if (!failed) await Promise.all(attempts.map((a) => a.giveBack()));
  }
}

/** Who a request comes from: a signed-in person (session cookie) or a program (API key). */
export type Principal = { userId: string; via: "session" | "apiKey"; email?: string };

const UNAUTHORIZED = "Sign in, or send an API key as 'Authorization: Bearer <key>'.";

function bearerOf(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? (match[1] as string) : "";
}

/**
 * The principal of `req`, or null when it carries no valid credential. A bearer key, when sent,
 * decides alone (a bad key is never rescued by a cookie). Throws 503 when the credential can't be
 * checked (Postgres and the cache both unreachable).
 */
export type AuthDeps = { store?: TaskStore; auth?: () => Promise<Auth> };

export async function authenticate(req: Request, deps: AuthDeps = {}): Promise<Principal | null> {
  try {
    const bearer = bearerOf(req);
    if (bearer !== null) {
      const store = deps.store ?? (await getTaskStore());
      const key = bearer === "" ? null : await verifyApiKey(store, bearer);
      return key ? { userId: key.userId, via: "apiKey" } : null;
    }
    const user = await sessionUser(req.headers, deps);
    return user ? { userId: user.id, via: "session", email: user.email } : null;
  } catch (err) {
    if (isTaskError(err)) throw err;
    if (!isDatabaseUnavailable(err)) log.error("could not check credentials", { err });
    throw new TaskError("service_unavailable", "Sign-in could not be checked. Try again shortly.", { cause: err });
  }
}

/**
 * The signed-in person behind a request's session cookie, or null. The cached session decides when
 * it is exactly what better-auth would answer (lib/auth/fastSession.ts); anything else (no cached
 * copy, a refresh due, a cache that can't be trusted) is better-auth's getSession. For API routes
 * (through authenticate) and server components and actions (lib/auth/session.ts) alike.
 */
export async function sessionUser(headers: Headers, deps: AuthDeps = {}): Promise<{ id: string; email: string; name: string } | null> {
  const cookies = headers.get("cookie") ?? "";
  if (!cookies.includes("session_token")) return null;
  const auth = await (deps.auth ?? getAuth)();
  const store = deps.store ?? (await getTaskStore());
  const token = sessionTokenOf(cookies, auth.options.secret, auth.options.advanced?.useSecureCookies === true);
  const cached = token ? await sessionFromCache(store, token) : undefined;
  if (cached) return { id: cached.userId, email: cached.email, name: cached.name };
  const found = await auth.api.getSession({ headers });
  return found ? { id: found.user.id, email: found.user.email, name: found.user.name } : null;
}

/** The principal of `req`, or a 401. */
export async function requirePrincipal(req: Request, deps: AuthDeps = {}): Promise<Principal> {
  const principal = await authenticate(req, deps);
  if (!principal) throw new TaskError("unauthorized", UNAUTHORIZED);
  return principal;
}

export { checkOrigin, isOwnOrigin, requestOrigin } from "./origin";

/** The authenticated caller's own task store: what every /api/tasks handler works on. */
export function tasksForWith(deps: { store: () => Promise<TaskStore>; auth: () => Promise<Auth>; limiter: () => Promise<RateLimiter> }) {
  return async (req: Request) => {
    const store = await deps.store();
    const principal = await requirePrincipal(req, { store, auth: deps.auth });
    checkOrigin(req, principal);
    await limitWrites(req, principal, await deps.limiter());
    return store.forUser(principal.userId);
  };
}

/** `tasksForWith` the process-wide store, auth and limiter: what the route files pass to the handlers. */
export const tasksFor = tasksForWith({ store: getTaskStore, auth: getAuth, limiter: getRateLimiter });
