import "server-only";
import { headers } from "next/headers";
import { sessionUser } from "./index";

/** Who is signed in, for server components and server actions; null when nobody is. */
export type CurrentUser = { id: string; name: string; email: string };

export async function getCurrentUser(): Promise<CurrentUser | null> {
  return sessionUser(await headers());
}

const SAME_SITE = "http://same.site.invalid";

/**
 * Where to go after signing in: a path on this site (from `?next=`), else the task page. The value
 * is resolved the way a browser would resolve it, and kept only if it stays on this site, so no
 * spelling of another host (`//host`, `/\\host`, `/<TAB>/host`, `https:`) gets through; control
 * characters are refused outright (browsers drop tabs and newlines from URLs before parsing).
 */
export function safeNextPath(next: string | string[] | undefined): string {
  const value = Array.isArray(next) ? next[0] : next;
  if (!value || !value.startsWith("/") || /[\u0000-\u001f\u007f\\]/.test(value)) return "/";
  let url: URL;
  try {
    url = new URL(value, SAME_SITE);
  } catch {
    return "/";
  }
  return url.origin === SAME_SITE ? `${url.pathname}${url.search}${url.hash}` : "/";
}
