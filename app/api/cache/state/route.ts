import { withRequestLog } from "@/lib/http/route";
import { cacheState, defaultOpsContext } from "@/lib/http/opsHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/cache/state", async (req: Request) => cacheState(await defaultOpsContext(), req));
