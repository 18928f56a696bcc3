import { withRequestLog } from "@/lib/http/route";
import { defaultLabContext, raceRoute } from "@/lib/lab/handlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const POST = withRequestLog("/api/cache/race", async (req: Request) => raceRoute(await defaultLabContext(), req));
