import { withRequestLog } from "@/lib/http/route";
import { auditCache } from "@/lib/http/opsHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/cache/audit", async () => {
  return auditCache(getTaskStore);
});
