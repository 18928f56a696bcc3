import { NextRequest } from "next/server";
import { describe, expect, test } from "vitest";
import { withRequestLog } from "@/lib/http/route";
import { HSTS_VALUE, servedOverHttps } from "@/lib/http/securityHeaders";
import { proxy } from "@/proxy";

// HSTS is decided per request at run time: one build may be served over https or not, and
// next.config's headers are fixed when the app is built.
describe("browser protections decided at run time", () => {
  test("servedOverHttps() follows the configured URL, the proxy's X-Forwarded-Proto and the request's own scheme", () => {
    const plain = new Request("http://app.test/");
    expect(servedOverHttps(plain, undefined)).toBe(false);
    expect(servedOverHttps(plain, "http://app.test")).toBe(false);
    expect(servedOverHttps(plain, "https://tasks.example")).toBe(true);
    expect(servedOverHttps(new Request("http://app.test/", { headers: { "x-forwarded-proto": "https" } }), undefined)).toBe(true);
    expect(servedOverHttps(new Request("https://app.test/"), undefined)).toBe(true);
  });

  test("API answers carry HSTS exactly when the request came over https", async () => {
    const route = withRequestLog("/test", async () => Response.json({ ok: true }));
    const overHttps = await route(new Request("http://app.test/api/x", { headers: { "x-forwarded-proto": "https" } }), {});
    expect(overHttps.headers.get("strict-transport-security")).toBe(HSTS_VALUE);
    const overHttp = await route(new Request("http://app.test/api/x"), {});
    expect(overHttp.headers.get("strict-transport-security")).toBeNull();
  });

  test("pages get a fresh nonce in their policy on every request, and HSTS over https", () => {
    const first = proxy(new NextRequest("http://app.test/", { headers: { "x-forwarded-proto": "https" } }));
    const second = proxy(new NextRequest("http://app.test/"));
    const nonceOf = (csp: string | null) => /'nonce-([^']+)'/.exec(csp ?? "")?.[1];
    const [a, b] = [first.headers.get("content-security-policy"), second.headers.get("content-security-policy")];
    expect(nonceOf(a)).toMatch(/^[A-Za-z0-9+/=]{20,}$/);
    expect(nonceOf(a)).not.toBe(nonceOf(b));
    expect(a).toContain("frame-ancestors 'none'");
    expect(first.headers.get("strict-transport-security")).toBe(HSTS_VALUE);
    expect(second.headers.get("strict-transport-security")).toBeNull();
  });
});
