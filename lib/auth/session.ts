import { headers } from "next/headers";
import { getAuth } from "./index";

/** Who is signed in, for server components and server actions; null when nobody is. */
export type CurrentUser = { id: string; name: string; email: string };

export async function getCurrentUser(): Promise<CurrentUser | null> {
  const found = await (await getAuth()).api.getSession({ headers: await headers() });
  return found ? { id: found.user.id, name: found.user.name, email: found.user.email } : null;
}

/**
 * Where to go after signing in: a path on this site (from `?next=`), else the task page. Anything
 * that could leave the site (`//host`, `https:`, a backslash) is ignored.
 */
export function safeNextPath(next: string | string[] | undefined): string {
  const value = Array.isArray(next) ? next[0] : next;
  if (!value || !value.startsWith("/") || value.startsWith("//") || value.includes("\\")) return "/";
  return value;
}
