import { withRequestLog } from "@/lib/http/route";
import { defaultOpsContext, repairCache } from "@/lib/http/opsHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

// Admins POST; schedulers that can only GET (Vercel Cron) send the CRON_SECRET as a bearer token.
export const GET = withRequestLog("/api/cache/repair", async (req: Request) => repairCache(await defaultOpsContext(), req));

export const POST = withRequestLog("/api/cache/repair", async (req: Request) => repairCache(await defaultOpsContext(), req));
