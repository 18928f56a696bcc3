import { deleteTask, getTask, updateTask } from "@/lib/http/taskHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

type Context = { params: Promise<{ id: string }> };

export async function GET(req: Request, { params }: Context) {
  const { id } = await params;
  return getTask(getTaskStore, req, id);
}

export async function PATCH(req: Request, { params }: Context) {
  const { id } = await params;
  return updateTask(getTaskStore, req, id);
}

export async function DELETE(req: Request, { params }: Context) {
  const { id } = await params;
  return deleteTask(getTaskStore, req, id);
}
