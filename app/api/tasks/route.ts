import { tasksFor } from "@/lib/auth";
import { withRequestLog } from "@/lib/http/route";
import { createTask, listTasks } from "@/lib/http/taskHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/tasks", (req: Request) => listTasks(tasksFor, req));

export const POST = withRequestLog("/api/tasks", (req: Request) => createTask(tasksFor, req));
