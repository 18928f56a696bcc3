import { getAuth, getRateLimiter, limitedAuthHandler } from "@/lib/auth";
import { errorResponse } from "@/lib/http/responses";
import { TaskError } from "@/lib/tasks/errors";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

// better-auth's own routes: sign-up, sign-in, sign-out, get-session, behind our rate limits (sign-up
// per address, failed sign-ins per address and per email). The api-key plugin's routes
// are not served: keys are made, listed and revoked through /api/keys, which keeps their cached
// copies right (a key deleted behind the cache's back would keep working until it expired).
async function serve(req: Request): Promise<Response> {
  if (new URL(req.url).pathname.startsWith("/api/auth/api-key")) {
    return errorResponse(new TaskError("not_found", "Manage API keys at /api/keys."));
  }
  try {
    return await limitedAuthHandler(req, await getAuth(), await getRateLimiter());
  } catch (err) {
    return errorResponse(err);
  }
}

export const GET = serve;
export const POST = serve;
