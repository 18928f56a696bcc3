import "server-only";
import { env } from "../env";
import { TaskError } from "../tasks/errors";

// Browser protection for cookie-authenticated writes (cross-site request forgery). Only a browser
// sends cookies on its own, and every browser that does also says where the request comes from:
// Sec-Fetch-Site (all current ones), else Origin, else Referer. A program with a bearer key sends
// no cookie and is unaffected; a program sending a cookie and none of these headers is not a
// browser, so nobody can have forged its request.

export const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const REFUSED = "Cross-origin requests with a session cookie are refused.";

/** Throws 403 for a cookie-authenticated write that a browser says came from another site. */
export function checkOrigin(req: Request, principal: { via: "session" | "apiKey" }): void {
  if (principal.via !== "session" || SAFE_METHODS.has(req.method)) return;
  const site = req.headers.get("sec-fetch-site");
  // "same-site" is a sibling subdomain: another origin all the same.
  if (site !== null && site !== "same-origin" && site !== "none") throw new TaskError("forbidden", REFUSED);
  const origin = req.headers.get("origin") ?? originOf(req.headers.get("referer"));
  if (origin !== undefined && !isOwnOrigin(req, origin)) throw new TaskError("forbidden", REFUSED);
}

/** A Referer's origin; "invalid" (never the app's) when it can't be read; undefined when absent. */
function originOf(referer: string | null): string | undefined {
  if (referer === null) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return "invalid";
  }
}

/** The origin the request was addressed to: its Host (or the proxy's X-Forwarded-Host/-Proto). */
export function requestOrigin(req: Request): string {
  const url = new URL(req.url);
  const host = req.headers.get("x-forwarded-host") ?? req.headers.get("host") ?? url.host;
  const proto = req.headers.get("x-forwarded-proto") ?? url.protocol.replace(":", "");
  return `${proto}://${host}`;
}

/**
 * Whether `origin` is the app's: BETTER_AUTH_URL's origin when set, else the host the request was
 * sent to (Origin: null, a sandboxed or opaque origin, never is).
 */
export function isOwnOrigin(req: Request, origin: string): boolean {
  if (env.BETTER_AUTH_URL) return origin === new URL(env.BETTER_AUTH_URL).origin;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  return host !== "" && host === (req.headers.get("x-forwarded-host") ?? req.headers.get("host") ?? new URL(req.url).host);
}
