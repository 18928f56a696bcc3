import "server-only";
import { z } from "zod";
import { getAuth, getRateLimiter, limitWrites, requirePrincipal, type Auth } from "../auth";
import { checkOrigin } from "../auth/origin";
import { TaskError } from "../tasks/errors";
import type { RateLimiter } from "../rateLimit";
import { createApiKeySchema, listApiKeys, revokeApiKey } from "../auth/apiKeys";
import type { TaskStore } from "../store/taskStore";
import { getTaskStore } from "../taskStore";
import { handle } from "./handle";
import { json, parseWith, readJsonBody } from "./responses";

// /api/keys: a signed-in user's API keys for programs. The secret is shown once, in the answer to
// POST; Postgres keeps only its hash.

export type KeyContext = { store: () => Promise<TaskStore>; auth: () => Promise<Auth>; limiter: () => Promise<RateLimiter> };

const defaultContext: KeyContext = { store: getTaskStore, auth: getAuth, limiter: getRateLimiter };

const keyIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: "Key id must be an id returned by /api/keys." });

async function caller(ctx: KeyContext, req: Request) {
  const store = await ctx.store();
  const principal = await requirePrincipal(req, { store, auth: ctx.auth });
  // Keys are managed by the person, signed in: a leaked key must not be able to mint itself a
  // successor that outlives its own revocation.
  if (principal.via !== "session") throw new TaskError("forbidden", "API keys are managed by a signed-in person; a key can't create, list or revoke keys.");
  checkOrigin(req, principal);
  await limitWrites(req, principal, await ctx.limiter());
  return { store, principal };
}

/** POST /api/keys `{ name }` → 201 `{ id, name, key, createdAt }`. */
export function createKey(req: Request, ctx: KeyContext = defaultContext): Promise<Response> {
  return handle(async () => {
    const { principal } = await caller(ctx, req);
    const { name } = parseWith(createApiKeySchema, await readJsonBody(req));
    const auth = await ctx.auth();
    const made = await auth.api.createApiKey({ body: { userId: principal.userId, name } });
    const body = { id: made.id, name: made.name ?? name, key: made.key, createdAt: new Date(made.createdAt).toISOString() };
    return json(body, { status: 201, headers: { Location: `/api/keys/${made.id}` } });
  });
}

/** GET /api/keys → `{ keys: [{ id, name, createdAt, lastUsedAt? }] }`, never a secret. */
export function listKeys(req: Request, ctx: KeyContext = defaultContext): Promise<Response> {
  return handle(async () => {
    const { store, principal } = await caller(ctx, req);
    return json({ keys: await listApiKeys(store, principal.userId) });
  });
}

/** DELETE /api/keys/{id} → 204; the key stops working at once, on every instance. */
export function deleteKey(req: Request, rawId: string, ctx: KeyContext = defaultContext): Promise<Response> {
  return handle(async () => {
    const { store, principal } = await caller(ctx, req);
    const id = parseWith(keyIdSchema, rawId, "invalid_id");
    await revokeApiKey(store, principal.userId, id);
    return new Response(null, { status: 204, headers: { "Cache-Control": "no-store" } });
  });
}
