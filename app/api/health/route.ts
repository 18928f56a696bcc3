import { withRequestLog } from "@/lib/http/route";
import { health } from "@/lib/http/opsHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/health", () => health(getTaskStore));
