import { withRequestLog } from "@/lib/http/route";
import { createKey, listKeys } from "@/lib/http/keyHandlers";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export const GET = withRequestLog("/api/keys", (req: Request) => listKeys(req));

export const POST = withRequestLog("/api/keys", (req: Request) => createKey(req));
