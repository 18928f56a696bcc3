export const runtime = "nodejs";
export const dynamic = "force-dynamic";

/** The cheapest route on this server: the ceiling the benchmark compares cached reads with. */
export function GET() {
  return Response.json({ ok: true }, { headers: { "Cache-Control": "no-store" } });
}
