import "server-only";
import { randomUUID } from "node:crypto";
import { log } from "../log";
import { metrics } from "../metrics";
import { env } from "../env";
import type { TaskErrorCode } from "../tasks/errors";
import { errorCodeOf, errorResponseFor } from "./handle";
import { HSTS_VALUE, servedOverHttps } from "./securityHeaders";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's x-request-id when it is a sane one, else a fresh id. */
export function requestIdFrom(header: string | null | undefined): string {
  return header && REQUEST_ID.test(header) ? header : randomUUID();
}

/** What the one log line of a request says. */
export type RequestLine = {
  requestId: string;
  method: string;
  /** The route's pattern (`/api/tasks/[id]`), never the raw path: it is a metrics label. */
  route: string;
  status: number;
  durationMs: number;
  cache?: string;
  /** The error code of an error response. */
  code?: TaskErrorCode;
};

/**
 * Logs a request's one line and records its duration. withRequestLog calls it for every request a
 * route answers, lib/http/rawRequest.ts for those answered before Next.js sees them.
 */
export function recordRequest(line: RequestLine): void {
  log.info("request", line);
  metrics().httpDuration.observe({ method: line.method, route: line.route, status: String(line.status) }, line.durationMs / 1000);
}

/**
 * Wraps a route handler: accepts or makes a request id (echoed as x-request-id), logs one line per
 * request (method, route, status, duration, cache outcome, error code, request id) and records its
 * duration. Adds HSTS when the request came over https (decided now, not at build time).
 */
export function withRequestLog<C>(route: string, handler: (req: Request, context: C) => Promise<Response>) {
  return async (req: Request, context: C): Promise<Response> => {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers.get("x-request-id"));
    let res: Response;
    try {
      res = await handler(req, context);
    } catch (err) {
      res = errorResponseFor(err);
    }
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    res.headers.set("x-request-id", requestId);
    if (servedOverHttps(req, env.BETTER_AUTH_URL)) res.headers.set("Strict-Transport-Security", HSTS_VALUE);
    const code = errorCodeOf(res);
    // The rest of a body that came too slowly is not worth waiting for (RFC 9110 §15.5.9).
    if (code === "request_timeout") res.headers.set("Connection", "close");
    recordRequest({
      requestId,
      method: req.method,
      route,
      status: res.status,
      durationMs,
      cache: res.headers.get("x-cache") ?? undefined,
      code,
    });
    return res;
  };
}
