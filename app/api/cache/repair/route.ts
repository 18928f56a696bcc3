import { env } from "@/lib/env";
import { repairCache } from "@/lib/http/taskHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

// Vercel Cron calls GET; other schedulers may POST. Both run one repair pass.
export async function GET(req: Request) {
  return repairCache(getTaskStore, req, env.CRON_SECRET);
}

export async function POST(req: Request) {
  return repairCache(getTaskStore, req, env.CRON_SECRET);
}
