import { randomBytes } from "node:crypto";
import { createAuth, type Auth } from "@/lib/auth";
import type { TaskStore } from "@/lib/taskStore";

export const APP_ORIGIN = "http://app.test";
const SECRET = "test-secret-that-is-at-least-32-characters-long";

/** better-auth over a test store, as the app builds it (the secret and origin are the test's). */
export function testAuth(store: TaskStore): Auth {
  return createAuth(store, { secret: SECRET, baseURL: APP_ORIGIN });
}

export type Credentials = { name: string; email: string; password: string };

export function newCredentials(label = "person"): Credentials {
  const tag = randomBytes(4).toString("hex");
  return { name: `${label} ${tag}`, email: `${label}-${tag}@example.test`, password: `pw-${tag}-long-enough` };
}

/** A request to better-auth's own routes, as a browser on the app's origin sends it. */
export function authRequest(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  return new Request(`${APP_ORIGIN}/api/auth${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: APP_ORIGIN, ...headers },
    body: JSON.stringify(body),
  });
}

/** The `name=value` pair of the session cookie a response sets (empty when it sets none). */
export function sessionCookieOf(res: Response): string {
  for (const line of res.headers.getSetCookie()) {
    const pair = line.split(";")[0] ?? "";
    if (/session_token=/.test(pair) && !/=$/.test(pair)) return pair;
  }
  return "";
}

/** Signs up through better-auth's route; returns the response and the session cookie it set. */
export async function signUp(auth: Auth, who: Credentials = newCredentials()): Promise<{ res: Response; cookie: string; who: Credentials }> {
  const res = await auth.handler(authRequest("/sign-up/email", who));
  return { res, cookie: sessionCookieOf(res), who };
}

export async function signIn(auth: Auth, who: { email: string; password: string }): Promise<{ res: Response; cookie: string }> {
  const res = await auth.handler(authRequest("/sign-in/email", { email: who.email, password: who.password }));
  return { res, cookie: sessionCookieOf(res) };
}

export async function signOut(auth: Auth, cookie: string): Promise<Response> {
  return auth.handler(authRequest("/sign-out", {}, { cookie }));
}

/** A request to our API carrying a cookie or a bearer key. */
export function apiRequest(method: string, path: string, credential: { cookie?: string; key?: string }, body?: unknown): Request {
  const headers: Record<string, string> = {};
  if (credential.cookie) headers.cookie = credential.cookie;
  if (credential.key) headers.authorization = `Bearer ${credential.key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return new Request(`${APP_ORIGIN}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}
