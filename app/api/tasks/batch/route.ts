import { tasksFor } from "@/lib/auth";
import { withRequestLog } from "@/lib/http/route";
import { batchTasks } from "@/lib/http/taskHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const POST = withRequestLog("/api/tasks/batch", (req: Request) => batchTasks(tasksFor, req));
