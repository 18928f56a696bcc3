import { withRequestLog } from "@/lib/http/route";
import { createTask, listTasks } from "@/lib/http/taskHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/tasks", async (req: Request) => {
  return listTasks(getTaskStore, req);
});

export const POST = withRequestLog("/api/tasks", async (req: Request) => {
  return createTask(getTaskStore, req);
});
