import "server-only";
import { STATUS_CODES, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import { env } from "../env";
import { TaskError, type TaskErrorCode } from "../tasks/errors";
import { publicErrorBody } from "./publicError";
import { recordRequest, requestIdFrom, type RequestLine } from "./route";
import { baseSecurityHeaders, HSTS_VALUE, httpsBy, NON_DOCUMENT_CSP } from "./securityHeaders";

// Checks on the raw request, before Next.js parses it, for the requests Next.js itself gets wrong:
//  - a malformed percent-encoding in an API path: its router decodes dynamic segments while
//    matching routes, throws, and answers a plain-text 500 that no route logs or counts;
//  - a method a route does not serve: TRACE makes it build a `Request` that undici refuses (a
//    500), an unknown one gets a bare 400, a missing one a bodiless 405 without Allow, and a
//    method Node's parser does not know (FOO) or CONNECT never reaches it at all;
//  - an absolute-form target (`GET http://evil.example/api/ping HTTP/1.1`): it "normalises" the
//    `//` of the scheme with a 308 whose Location is that foreign origin.
// Each is answered here with the API's JSON error and logged as the request's one line. The common
// request costs a few string tests (no decoding unless the target has a `%`).

/** Every API route and the methods its route.ts exports (tests/integration/edges.test.ts holds this to app/api). */
export const API_ROUTES: ReadonlyArray<{ route: string; methods: readonly string[]; staticFile?: true }> = [
  { route: "/api/auth/[...all]", methods: ["GET", "POST"] },
  { route: "/api/cache/audit", methods: ["GET"] },
  { route: "/api/cache/evict", methods: ["POST"] },
  { route: "/api/cache/flush", methods: ["POST"] },
  { route: "/api/cache/race", methods: ["POST"] },
  { route: "/api/cache/repair", methods: ["GET", "POST"] },
  { route: "/api/cache/state", methods: ["GET"] },
  { route: "/api/health", methods: ["GET"] },
  { route: "/api/keys", methods: ["GET", "POST"] },
  { route: "/api/keys/[id]", methods: ["DELETE"] },
  { route: "/api/metrics", methods: ["GET"] },
  // Prerendered at build time: Next.js serves it as a file, GET and HEAD only.
  { route: "/api/openapi.json", methods: ["GET"], staticFile: true },
  { route: "/api/ping", methods: ["GET"] },
  { route: "/api/tasks", methods: ["GET", "POST"] },
  { route: "/api/tasks/[id]", methods: ["DELETE", "GET", "PATCH"] },
  { route: "/api/tasks/[id]/restore", methods: ["POST"] },
  { route: "/api/tasks/batch", methods: ["POST"] },
  { route: "/api/tasks/events", methods: ["GET"] },
];

/** The methods Next.js builds a route handler call for; any other one on a page is refused here. */
const NEXT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"]);
const PAGE_ALLOW = "GET, HEAD";

type Resolved = { route: string; allowed: ReadonlySet<string>; allow: string };

/** What a route answers: what it exports, HEAD for a GET and OPTIONS, which Next.js adds (not to files). */
function resolvedOf(route: string, methods: readonly string[], staticFile: boolean): Resolved {
  const all = new Set(methods);
  if (all.has("GET")) all.add("HEAD");
  if (!staticFile) all.add("OPTIONS");
  return { route, allowed: all, allow: [...all].sort().join(", ") };
}

const STATIC_ROUTES = new Map<string, Resolved>();
const DYNAMIC_ROUTES: Array<{ pattern: RegExp; resolved: Resolved }> = [];
for (const { route, methods, staticFile } of API_ROUTES) {
  const resolved = resolvedOf(route, methods, staticFile === true);
  if (!route.includes("[")) STATIC_ROUTES.set(route, resolved);
  else {
    const source = route.replace(/\[\.\.\.[^\]]+\]/g, ".+").replace(/\[[^\]]+\]/g, "[^/]+");
    DYNAMIC_ROUTES.push({ pattern: new RegExp(`^${source}$`), resolved });
  }
}

/** The API route a raw (still encoded) path is for; a trailing slash is the same route (Next.js redirects it). */
export function apiRouteOf(pathname: string): Resolved | undefined {
  const path = pathname.length > 1 && pathname.endsWith("/") ? pathname.slice(0, -1) : pathname;
  const exact = STATIC_ROUTES.get(path);
  if (exact) return exact;
  for (const { pattern, resolved } of DYNAMIC_ROUTES) if (pattern.test(path)) return resolved;
  return undefined;
}

/** A request answered here rather than by Next.js. */
export type Refusal = { code: TaskErrorCode; message: string; route: string; allow?: string };

/** A refusal, the origin-form target to use instead, or undefined: pass the request on as it is. */
export type TargetCheck = { refusal: Refusal } | { url: string } | undefined;

const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;
const UNMATCHED = "(unmatched)";
const PAGES = "(pages)";

function methodNotAllowed(route: string, allow: string): Refusal {
  return { code: "method_not_allowed", message: allow ? `This route allows only ${allow}.` : "This target allows no methods.", route, allow };
}

/**
 * What to do with a request for `target` by `method`: the origin-form target to hand to Next.js
 * (an absolute-form one loses its scheme and authority: this server has one origin, and never
 * writes another into a Location), or the refusal to answer it with.
 */
export function checkTarget(method: string, target: string): TargetCheck {
  if (target.startsWith("/")) return checkPath(method, target);
  const absolute = ABSOLUTE_FORM.exec(target);
  if (!absolute) return { refusal: { code: "invalid_url", message: "The request target must be a path, like /api/tasks.", route: UNMATCHED } };
  const rest = target.slice(absolute[0].length);
  const url = rest.startsWith("/") ? rest : `/${rest}`;
  return checkPath(method, url) ?? { url };
}

function checkPath(method: string, url: string): { refusal: Refusal } | undefined {
  if (!url.startsWith("/api/")) return NEXT_METHODS.has(method) ? undefined : { refusal: methodNotAllowed(PAGES, PAGE_ALLOW) };
  const query = url.indexOf("?");
  const resolved = apiRouteOf(query === -1 ? url : url.slice(0, query));
  if (url.includes("%") && !decodes(url)) {
    return { refusal: { code: "invalid_url", message: "The URL has a malformed percent-encoding (each % must start a valid UTF-8 sequence).", route: resolved?.route ?? UNMATCHED } };
  }
  // An unknown API path is Next.js' 404, whatever the method.
  if (resolved && !resolved.allowed.has(method)) return { refusal: methodNotAllowed(resolved.route, resolved.allow) };
  return undefined;
}

function decodes(url: string): boolean {
  try {
    decodeURIComponent(url);
    return true;
  } catch {
    return false;
  }
}

/** The headers every response carries (next.config.ts adds them to those Next.js makes). */
function responseHeaders(refusal: Refusal, requestId: string, https: boolean, body: string): Record<string, string> {
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "Content-Length": String(Buffer.byteLength(body)),
    "Cache-Control": "no-store",
    "Content-Security-Policy": NON_DOCUMENT_CSP,
    "x-request-id": requestId,
  };
  for (const { key, value } of baseSecurityHeaders(false)) headers[key] = value;
  if (https) headers["Strict-Transport-Security"] = HSTS_VALUE;
  if (refusal.allow !== undefined) headers.Allow = refusal.allow;
  return headers;
}

function servedOverHttps(req: IncomingMessage): boolean {
  return httpsBy(env.BETTER_AUTH_URL, headerValue(req.headers["x-forwarded-proto"]), (req.socket as Socket & { encrypted?: boolean }).encrypted === true);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

type Recorder = (line: RequestLine) => void;

/** Answers `req` with `refusal` through its ServerResponse and logs the request's line. */
function answer(req: IncomingMessage, res: ServerResponse, refusal: Refusal, started: number, record: Recorder): void {
  const error = new TaskError(refusal.code, refusal.message);
  const body = JSON.stringify({ error: publicErrorBody(error) });
  const requestId = requestIdFrom(headerValue(req.headers["x-request-id"]));
  res.writeHead(error.status, responseHeaders(refusal, requestId, servedOverHttps(req), body));
  res.end(body);
  record({ requestId, method: req.method ?? "", route: refusal.route, status: error.status, durationMs: elapsed(started), code: refusal.code });
}

/** Answers on a bare socket (no ServerResponse: a parse error, CONNECT) and closes it. */
function answerOnSocket(socket: Socket, method: string, refusal: Refusal, requestIdHeader: string | undefined, https: boolean, started: number, record: Recorder): void {
  const error = new TaskError(refusal.code, refusal.message);
  const body = JSON.stringify({ error: publicErrorBody(error) });
  const requestId = requestIdFrom(requestIdHeader);
  const headers = { ...responseHeaders(refusal, requestId, https, body), Date: new Date().toUTCString(), Connection: "close" };
  const head = [`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join("\r\n");
  socket.end(`${head}\r\n\r\n${body}`, () => socket.destroy());
  record({ requestId, method, route: refusal.route, status: error.status, durationMs: elapsed(started), code: refusal.code });
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

/**
 * A method Node's parser does not know (`FOO /api/tasks HTTP/1.1`) fails before any request
 * exists: read the method and target from the bytes, and answer a 405 for a route or a page (an
 * unknown API path keeps Node's plain 400).
 */
function answerUnknownMethod(err: Error & { code?: string; rawPacket?: Buffer }, socket: Socket, record: Recorder): boolean {
  if (err.code !== "HPE_INVALID_METHOD" || !socket.writable || socket.bytesWritten > 0 || !err.rawPacket) return false;
  const started = performance.now();
  const text = err.rawPacket.subarray(0, 8192).toString("latin1");
  const line = /^([!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}) (\S{1,8000}) HTTP\/1\.[01]\r?\n/.exec(text);
  if (!line) return false;
  const check = checkTarget(line[1] as string, line[2] as string);
  const refusal = check && "refusal" in check ? check.refusal : undefined;
  if (!refusal) return false;
  const requestId = /\r?\nx-request-id:[ \t]*([^\r\n]*)/i.exec(text)?.[1]?.trim();
  answerOnSocket(socket, line[1] as string, refusal, requestId, (socket as Socket & { encrypted?: boolean }).encrypted === true, started, record);
  return true;
}

/** This server is no proxy: CONNECT to a route or a page is a 405, to anywhere else a 405 allowing nothing. */
function answerConnect(req: IncomingMessage, socket: Socket, record: Recorder): void {
  const started = performance.now();
  const target = req.url ?? "";
  const check = target.startsWith("/") ? checkTarget("CONNECT", target) : undefined;
  const refusal = check && "refusal" in check ? check.refusal : methodNotAllowed(UNMATCHED, "");
  answerOnSocket(socket, "CONNECT", refusal, headerValue(req.headers["x-request-id"]), servedOverHttps(req), started, record);
}

const GUARD_HOOK = Symbol.for("writethrough-tasks.rawRequestGuard");
const CHECKED = Symbol.for("writethrough-tasks.rawRequestChecked");
const CONNECT_ANSWERED = Symbol.for("writethrough-tasks.connectAnswered");
// 'checkContinue' and 'checkExpectation' replace 'request' for requests with an Expect header.
const REQUEST_EVENTS = new Set<string | symbol>(["request", "checkContinue", "checkExpectation"]);

/**
 * Installs the checks above on every request `target` (a server, or a server class's prototype)
 * emits, before any listener, Next.js included, sees it; as lib/http/clientAddress.ts does for
 * X-Forwarded-For. Installs once per target; later calls change nothing.
 */
export function guardRawRequests(target: HttpServer | HttpsServer, record: Recorder = recordRequest): void {
  if (Object.prototype.hasOwnProperty.call(target, GUARD_HOOK)) return;
  Object.defineProperty(target, GUARD_HOOK, { value: true });
  // The emit in place now (perhaps another hook's), read without calling it: it is called below, with the server as `this`.
  const emit = Reflect.get(target, "emit");
  target.emit = function emitWithRawChecks(this: HttpServer & { [CONNECT_ANSWERED]?: true }, event: string | symbol, ...args: unknown[]): boolean {
    if (REQUEST_EVENTS.has(event)) {
      const req = args[0] as (IncomingMessage & { [CHECKED]?: true }) | undefined;
      // Once per request: a listener may re-emit a 'checkContinue' request as 'request'.
      if (req && !req[CHECKED]) {
        req[CHECKED] = true;
        const check = checkTarget(req.method ?? "", req.url ?? "");
        if (check) {
          if ("url" in check) req.url = check.url;
          else {
            answer(req, args[1] as ServerResponse, check.refusal, performance.now(), record);
            return true;
          }
        }
      }
    } else if (event === "clientError") {
      if (answerUnknownMethod(args[0] as Error, args[1] as Socket, record)) return true;
    } else if (event === "connection" && !this[CONNECT_ANSWERED]) {
      // Node drops a CONNECT without a word unless the server listens for it.
      Object.defineProperty(this, CONNECT_ANSWERED, { value: true });
      this.on("connect", (req: IncomingMessage, socket: Socket) => answerConnect(req, socket, record));
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof emit;
}
