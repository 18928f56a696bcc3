import { tasksFor } from "@/lib/auth";
import { withRequestLog } from "@/lib/http/route";
import { restoreTask } from "@/lib/http/taskHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

type Context = { params: Promise<{ id: string }> };

export const POST = withRequestLog("/api/tasks/[id]/restore", async (req: Request, { params }: Context) => {
  const { id } = await params;
  return restoreTask(tasksFor, req, id);
});
