import { NextResponse, type NextRequest } from "next/server";
import { env } from "./lib/env";
import { pageCsp } from "./lib/http/securityHeaders";

// Pages only (see `config.matcher`): a fresh nonce per request, in the response's CSP and in the
// request's, where Next.js reads it to mark its own inline scripts. API routes and static files
// get their (nonce-less) policy from next.config.ts and skip this step.
export function proxy(request: NextRequest) {
  const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
  const https = (env.BETTER_AUTH_URL ?? "").startsWith("https:") || request.nextUrl.protocol === "https:";
  const csp = pageCsp({ nonce, dev: env.NODE_ENV !== "production", https });
  const headers = new Headers(request.headers);
  headers.set("x-nonce", nonce);
  headers.set("Content-Security-Policy", csp);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set("Content-Security-Policy", csp);
  return response;
}

export const config = {
  matcher: [
    {
      source: "/((?!api/|_next/static|_next/image|favicon.svg|robots.txt).*)",
      // Prefetches fetch RSC payloads, not documents: no nonce needed.
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};
