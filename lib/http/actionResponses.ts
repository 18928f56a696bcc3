import "server-only";
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { Server as HttpsServer } from "node:https";

// Next.js answers every server action with `Cache-Control: no-cache, no-store, max-age=0,
// must-revalidate`, and the page reads that answer as a stream (React's Flight client reads the
// body with a reader to its end). Chromium drops such a request when its no-store body has been
// read, before the request's completion is in: its network log then shows net::ERR_ABORTED
// (canceled) for about half of the page's writes, though every byte arrived and the write
// succeeded. The same answer without no-store completes normally.
//
// no-store adds nothing to the answer to a POST: no HTTP cache stores one without explicit
// freshness and a Content-Location (RFC 9110, 9.3.3). So on server-action answers it
// becomes `private, no-cache, max-age=0, must-revalidate`: still never reused, by any cache.
// Pages and RSC GETs keep their no-store (they are cacheable, and carry the person's tasks).

export const ACTION_CACHE_CONTROL = "private, no-cache, max-age=0, must-revalidate";

const NO_STORE = /(?:^|,)\s*no-store\s*(?:,|$)/i;

/** The Cache-Control a server action's answer is sent with, given the one Next.js set. */
export function actionCacheControl<T>(value: T): T | string {
  return typeof value === "string" && NO_STORE.test(value) ? ACTION_CACHE_CONTROL : value;
}

/** A server action call: a POST naming the action in its Next-Action header. */
export function isServerActionRequest(req: Pick<IncomingMessage, "method" | "headers">): boolean {
  return req.method === "POST" && typeof req.headers["next-action"] === "string";
}

const ACTION_HOOK = Symbol.for("writethrough-tasks.actionResponsesHook");

/**
 * Sends every server action's answer that `target` (a server, or a server class's prototype)
 * makes with actionCacheControl's header, whatever Next.js sets. Installs once per target; later
 * calls change nothing.
 */
export function actionResponsesWithoutNoStore(target: HttpServer | HttpsServer): void {
  if (Object.prototype.hasOwnProperty.call(target, ACTION_HOOK)) return;
  Object.defineProperty(target, ACTION_HOOK, { value: true });
  // The emit in place now (perhaps another hook's), read without calling it: it is called below, with the server as `this`.
  const emit = Reflect.get(target, "emit");
  target.emit = function emitWithActionCacheControl(this: unknown, event: string | symbol, ...args: unknown[]): boolean {
    const req = args[0] as IncomingMessage | undefined;
    const res = args[1] as ServerResponse | undefined;
    if (event === "request" && req && res && isServerActionRequest(req)) {
      const setHeader = res.setHeader.bind(res);
      res.setHeader = (name: string, value: number | string | readonly string[]) =>
        setHeader(name, name.toLowerCase() === "cache-control" ? actionCacheControl(value) : value);
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof emit;
}
