import { withRequestLog } from "@/lib/http/route";
import { cacheState } from "@/lib/http/opsHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/cache/state", async (req: Request) => {
  return cacheState(getTaskStore, req);
});
