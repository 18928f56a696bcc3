import { withRequestLog } from "@/lib/http/route";
import { deleteKey } from "@/lib/http/keyHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

type Context = { params: Promise<{ id: string }> };

export const DELETE = withRequestLog("/api/keys/[id]", async (req: Request, { params }: Context) => {
  const { id } = await params;
  return deleteKey(req, id);
});
