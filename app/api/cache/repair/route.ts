import { withRequestLog } from "@/lib/http/route";
import { env } from "@/lib/env";
import { repairCache } from "@/lib/http/opsHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

// Vercel Cron calls GET; other schedulers may POST. Both run one repair pass.
export const GET = withRequestLog("/api/cache/repair", async (req: Request) => {
  return repairCache(getTaskStore, req, env.CRON_SECRET);
});

export const POST = withRequestLog("/api/cache/repair", async (req: Request) => {
  return repairCache(getTaskStore, req, env.CRON_SECRET);
});
