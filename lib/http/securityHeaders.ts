// The browser protections every response carries. Pages get a per-request nonce for the inline
// scripts Next.js streams (proxy.ts); everything else (API JSON, static files) gets a policy that
// allows nothing at all, since none of it is a document.
// No `import "server-only"`: next.config.ts and proxy.ts import this, outside the react-server condition.

type Options = { nonce: string; dev: boolean; https: boolean };

/** The policy for HTML pages: scripts only from this origin with this request's nonce. */
export function pageCsp({ nonce, dev, https }: Options): string {
  return [
    "default-src 'self'",
    // 'strict-dynamic' lets the nonced bootstrap load the page's chunks; React's dev build needs eval.
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ""}`,
    // Inline style attributes (React, the dev overlay) are harmless next to a strict script-src.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    `connect-src 'self'${dev ? " ws: wss:" : ""}`,
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    ...(https ? ["upgrade-insecure-requests"] : []),
  ].join("; ");
}

/** The policy for everything that is not a page. */
export const NON_DOCUMENT_CSP = "default-src 'none'; frame-ancestors 'none'";

export const HSTS_VALUE = "max-age=63072000; includeSubDomains";

/**
 * Whether this response goes out over https, decided per request at run time (next.config's
 * headers are fixed when the app is built, and one build may run behind https or not): the app's
 * configured URL is https, or the proxy in front says the request came over https.
 */
export function servedOverHttps(req: Request, configuredUrl: string | undefined): boolean {
  return httpsBy(configuredUrl, req.headers.get("x-forwarded-proto"), req.url.startsWith("https:"));
}

/** The same rule from its parts (the raw-request layer has a Node request, not a web Request). */
export function httpsBy(configuredUrl: string | undefined, forwardedProto: string | null | undefined, direct: boolean): boolean {
  return (configuredUrl ?? "").startsWith("https:") || forwardedProto === "https" || direct;
}

/** Headers for every response, fixed at build time; HSTS only when the build knows the app is https. */
export function baseSecurityHeaders(https: boolean): Array<{ key: string; value: string }> {
  return [
    { key: "X-Content-Type-Options", value: "nosniff" },
    { key: "Referrer-Policy", value: "strict-origin-when-cross-origin" },
    { key: "X-Frame-Options", value: "DENY" },
    ...(https ? [{ key: "Strict-Transport-Security", value: HSTS_VALUE }] : []),
  ];
}
