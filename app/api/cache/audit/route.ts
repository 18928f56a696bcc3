import { withRequestLog } from "@/lib/http/route";
import { auditCache, defaultOpsContext } from "@/lib/http/opsHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/cache/audit", async (req: Request) => auditCache(await defaultOpsContext(), req));
