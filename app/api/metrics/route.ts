import { defaultOpsContext, prometheusMetrics } from "@/lib/http/opsHandlers";
import { withRequestLog } from "@/lib/http/route";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/metrics", async (req: Request) => prometheusMetrics(await defaultOpsContext(), req));
