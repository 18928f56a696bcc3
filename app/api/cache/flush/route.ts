import { withRequestLog } from "@/lib/http/route";
import { defaultLabContext, flushRoute } from "@/lib/lab/handlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const POST = withRequestLog("/api/cache/flush", async (req: Request) => flushRoute(await defaultLabContext(), req));
