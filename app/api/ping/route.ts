import { env } from "@/lib/env";
import { HSTS_VALUE, servedOverHttps } from "@/lib/http/securityHeaders";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

/** The cheapest route on this server: the ceiling the benchmark compares cached reads with. */
export function GET(req: Request) {
  const headers: Record<string, string> = { "Cache-Control": "no-store" };
  if (servedOverHttps(req, env.BETTER_AUTH_URL)) headers["Strict-Transport-Security"] = HSTS_VALUE;
  return Response.json({ ok: true }, { headers });
}
