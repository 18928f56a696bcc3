import { prometheusMetrics } from "@/lib/http/opsHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET() {
  return prometheusMetrics(getTaskStore);
}
