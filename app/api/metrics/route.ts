import { defaultOpsContext, prometheusMetrics } from "@/lib/http/opsHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET(req: Request) {
  return prometheusMetrics(await defaultOpsContext(), req);
}
