import { tasksFor } from "@/lib/auth";
import { withRequestLog } from "@/lib/http/route";
import { taskEvents } from "@/lib/http/taskHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/tasks/events", (req: Request) => taskEvents(tasksFor, req));
