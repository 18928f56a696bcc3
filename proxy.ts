import { NextResponse, type NextRequest } from "next/server";
import { env } from "./lib/env";
import { HSTS_VALUE, pageCsp, servedOverHttps } from "./lib/http/securityHeaders";

// Pages only (see `config.matcher`): a fresh nonce per request, in the response's CSP and in the
// request's, where Next.js reads it to mark its own inline scripts. API routes and static files
// get their (nonce-less) policy from next.config.ts and skip this step. HSTS is decided here, per
// request, because next.config's headers are fixed at build time.
export function proxy(request: NextRequest) {
  const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
  const https = servedOverHttps(request, env.BETTER_AUTH_URL);
  const csp = pageCsp({ nonce, dev: env.NODE_ENV !== "production", https });
  const headers = new Headers(request.headers);
  headers.set("x-nonce", nonce);
  headers.set("Content-Security-Policy", csp);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("Content-Security-Policy", csp);
  if (https) response.headers.set("Strict-Transport-Security", HSTS_VALUE);
  return response;
}

export const config = {
  // Every page response (prefetched RSC payloads too: every response carries a policy).
  matcher: ["/((?!api/|_next/static|_next/image|favicon.svg).*)"],
};
