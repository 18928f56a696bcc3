import { createTask, listTasks } from "@/lib/http/taskHandlers";
import { getTaskStore } from "@/lib/taskStore";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET(req: Request) {
  return listTasks(getTaskStore, req);
}

export async function POST(req: Request) {
  return createTask(getTaskStore, req);
}
