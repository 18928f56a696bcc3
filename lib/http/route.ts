import { randomUUID } from "node:crypto";
import { log } from "../log";
import { metrics } from "../metrics";
import { env } from "../env";
import { errorResponse } from "./responses";
import { HSTS_VALUE, servedOverHttps } from "./securityHeaders";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Wraps a route handler: accepts or makes a request id (echoed as x-request-id), logs one line per
 * request (method, route, status, duration, cache outcome, request id) and records its duration.
 * Adds HSTS when the request came over https (decided now, not at build time).
 */
export function withRequestLog<C>(route: string, handler: (req: Request, context: C) => Promise<Response>) {
  return async (req: Request, context: C): Promise<Response> => {
    const started = performance.now();
    const incoming = req.headers.get("x-request-id");
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    let res: Response;
    try {
      res = await handler(req, context);
    } catch (err) {
      res = errorResponse(err);
    }
    const durationMs = Math.round((performance.now() - started) * 100) / 100;
    res.headers.set("x-request-id", requestId);
    if (servedOverHttps(req, env.BETTER_AUTH_URL)) res.headers.set("Strict-Transport-Security", HSTS_VALUE);
    log.info("request", {
      requestId,
      method: req.method,
      route,
      status: res.status,
      durationMs,
      cache: res.headers.get("x-cache") ?? undefined,
    });
    metrics().httpDuration.observe({ method: req.method, route, status: String(res.status) }, durationMs / 1000);
    return res;
  };
}
