import { tasksFor } from "@/lib/auth";
import { withRequestLog } from "@/lib/http/route";
import { deleteTask, getTask, updateTask } from "@/lib/http/taskHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

type Context = { params: Promise<{ id: string }> };

export const GET = withRequestLog("/api/tasks/[id]", async (req: Request, { params }: Context) => {
  const { id } = await params;
  return getTask(tasksFor, req, id);
});

export const PATCH = withRequestLog("/api/tasks/[id]", async (req: Request, { params }: Context) => {
  const { id } = await params;
  return updateTask(tasksFor, req, id);
});

export const DELETE = withRequestLog("/api/tasks/[id]", async (req: Request, { params }: Context) => {
  const { id } = await params;
  return deleteTask(tasksFor, req, id);
});
