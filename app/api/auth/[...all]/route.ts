import { getAuth, getRateLimiter, limitedAuthHandler } from "@/lib/auth";
import { errorResponse } from "@/lib/http/responses";
import { withRequestLog } from "@/lib/http/route";
import { TaskError } from "@/lib/tasks/errors";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

// better-auth's own routes, only those the product uses, behind our rate limits (sign-up per
// address, failed sign-ins per address and per email). Everything else better-auth could serve is
// a 404: its api-key routes (keys are managed at /api/keys, which keeps their cached copies right),
// and the account routes this app has no page for (update-user, change-email, change-password,
// delete-user, ...), each a way around our checks on names, sessions or cached copies.
const SERVED: Record<string, ReadonlySet<string>> = {
  "/api/auth/sign-up/email": new Set(["POST"]),
  "/api/auth/sign-in/email": new Set(["POST"]),
  "/api/auth/sign-out": new Set(["POST"]),
  "/api/auth/get-session": new Set(["GET"]),
};

async function serve(req: Request): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (!SERVED[path]?.has(req.method)) {
    const hint = path.startsWith("/api/auth/api-key") ? "Manage API keys at /api/keys." : `${req.method} ${path} is not served.`;
    return errorResponse(new TaskError("not_found", hint));
  }
  try {
    return await limitedAuthHandler(req, await getAuth(), await getRateLimiter());
  } catch (err) {
    return errorResponse(err);
  }
}

export const GET = withRequestLog("/api/auth", serve);
export const POST = withRequestLog("/api/auth", serve);
