import type { NextConfig } from "next";
// Importing the env module here makes a bad variable fail `next build` and `next dev` at once,
// with the variable named, instead of on the first request.
import { env } from "./lib/env";
import { baseSecurityHeaders, NON_DOCUMENT_CSP } from "./lib/http/securityHeaders";

const https = (env.BETTER_AUTH_URL ?? "").startsWith("https:");

const nextConfig: NextConfig = {
  // PGlite ships WebAssembly and data files that must be loaded from node_modules, not bundled.
  serverExternalPackages: ["@electric-sql/pglite", "ioredis", "postgres", "pino", "prom-client"],
  poweredByHeader: false,
  async headers() {
    const strict = [{ key: "Content-Security-Policy", value: NON_DOCUMENT_CSP }];
    return [
      { source: "/:path*", headers: baseSecurityHeaders(https) },
      // Pages get a nonce-based policy from proxy.ts; the rest is never a document.
      { source: "/api/:path*", headers: strict },
      { source: "/_next/static/:path*", headers: strict },
      { source: "/_next/image", headers: strict },
      { source: "/favicon.svg", headers: strict },
    ];
  },
};

export default nextConfig;
