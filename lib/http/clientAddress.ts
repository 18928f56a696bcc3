import "server-only";
import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";

// Who is on the other end of a request, for the per-address abuse limits (lib/rateLimit.ts):
// X-Forwarded-For made trustworthy at the server, then read from the right (docs/decisions/008).

/**
 * The client's address. X-Forwarded-For is read from the right: each of the `trustedProxyHops`
 * proxies in front of the app appended the address it saw, and the last entry is the socket's
 * (trustPeerAddress puts it there), so the entry `trustedProxyHops` places left of the last is the
 * one the outermost trusted proxy saw. Entries further left are the client's to choose and are
 * never used. Fewer entries than that: the first.
 */
export function clientAddress(req: Request, trustedProxyHops: number): string {
  const entries = (req.headers.get("x-forwarded-for") ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) return req.headers.get("x-real-ip")?.trim() || "unknown";
  return entries[Math.max(0, entries.length - 1 - trustedProxyHops)] as string;
}

/**
 * X-Forwarded-For as the app must see it, given what came in and the socket's address: with no
 * trusted proxy, only the socket (whatever the client wrote is dropped); behind proxies, what they
 * sent plus the socket, which is the nearest proxy.
 */
export function forwardedForWithPeer(received: string | string[] | undefined, peer: string | undefined, trustedProxyHops: number): string {
  // A dual-stack socket names an IPv4 client ::ffff:a.b.c.d; proxies write a.b.c.d: one bucket.
  const socket = peer?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "") || "unknown";
  const prior = (Array.isArray(received) ? received.join(", ") : (received ?? "")).trim();
  return trustedProxyHops === 0 || prior === "" ? socket : `${prior}, ${socket}`;
}

const PEER_HOOK = Symbol.for("writethrough-tasks.peerAddressHook");
const PEER_REWRITTEN = Symbol.for("writethrough-tasks.peerAddressRewritten");
// 'checkContinue' and 'checkExpectation' replace 'request' for requests with an Expect header.
const REQUEST_EVENTS = new Set<string | symbol>(["request", "checkContinue", "checkExpectation"]);

/**
 * Makes X-Forwarded-For trustworthy for every request `target` (a server, or a server class's
 * prototype) emits: rewritten by forwardedForWithPeer before any listener, Next.js included, reads
 * it. Next.js only fills the header with the socket's address when the client sent none, so a
 * client reaching it directly could otherwise name any address it liked (docs/decisions/008).
 * Installs once per target; later calls change nothing.
 */
export function trustPeerAddress(target: HttpServer | HttpsServer, trustedProxyHops: number): void {
  if (Object.prototype.hasOwnProperty.call(target, PEER_HOOK)) return;
  Object.defineProperty(target, PEER_HOOK, { value: true });
  // The emit in place now (perhaps another hook's), read without calling it: it is called below, with the server as `this`.
  const emit = Reflect.get(target, "emit");
  target.emit = function emitWithPeerAddress(this: unknown, event: string | symbol, ...args: unknown[]): boolean {
    const req = args[0] as (IncomingMessage & { [PEER_REWRITTEN]?: true }) | undefined;
    // Once per request: a listener may re-emit a 'checkContinue' request as 'request'.
    if (REQUEST_EVENTS.has(event) && req && !req[PEER_REWRITTEN]) {
      req[PEER_REWRITTEN] = true;
      req.headers["x-forwarded-for"] = forwardedForWithPeer(req.headers["x-forwarded-for"], req.socket?.remoteAddress, trustedProxyHops);
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof emit;
}
