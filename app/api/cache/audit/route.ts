import { auditCache } from "@/lib/http/taskHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET() {
  return auditCache(getTaskStore);
}
