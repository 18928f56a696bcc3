import { withRequestLog } from "@/lib/http/route";
import { defaultLabContext, evictRoute } from "@/lib/lab/handlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const POST = withRequestLog("/api/cache/evict", async (req: Request) => evictRoute(await defaultLabContext(), req));
