import "server-only";
import { z } from "zod";
import { BREAKER_STATES, CACHE_DRIVER_CHOICES } from "../names";
import { STATUS_BY_CODE, type TaskErrorCode } from "../tasks/errors";
import { createApiKeySchema } from "../auth/apiKeys";
import { BATCH_MAX_IDS, batchSchema, createTaskSchema, LIST_LIMIT_MAX, taskResponseSchema, TITLE_MAX_CHARS, updateTaskSchema } from "../tasks/schema";

/**
 * GET /api/openapi.json: an OpenAPI 3.1 description built from the same zod schemas the routes
 * parse with, listing every status each route returns. tests/integration/openapi.test.ts checks
 * real responses against it.
 */
const json = (schema: z.ZodType, io: "input" | "output" = "output") => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
};
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonBody = (schema: object, description: string) => ({ description, content: { "application/json": { schema } } });
const error = (description: string) => jsonBody(ref("Error"), description);

const errorSchema = z.strictObject({
  error: z.strictObject({
    code: z.enum(Object.keys(STATUS_BY_CODE) as [TaskErrorCode, ...TaskErrorCode[]]),
    message: z.string(),
    issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
  }),
});
const countsSchema = z.strictObject({ all: z.number().int().min(0), open: z.number().int().min(0), done: z.number().int().min(0) });
const pageSchema = z.strictObject({ tasks: z.array(taskResponseSchema), nextCursor: z.string().regex(/^[1-9][0-9]*$/).nullable(), counts: countsSchema });
const batchResultSchema = z.union([z.strictObject({ tasks: z.array(taskResponseSchema) }), z.strictObject({ ids: z.array(z.number().int().min(1)) })]);
const healthSchema = z.strictObject({
  status: z.enum(["ok", "degraded", "down"]),
  db: z.strictObject({ ok: z.boolean(), latencyMs: z.number().nullable(), breaker: z.enum(BREAKER_STATES).nullable() }),
  cache: z.strictObject({
    driver: z.enum(CACHE_DRIVER_CHOICES),
    ok: z.boolean(),
    latencyMs: z.number().nullable(),
    breaker: z.enum(BREAKER_STATES).nullable(),
  }),
});
const auditSchema = z.strictObject({
  driver: z.enum(CACHE_DRIVER_CHOICES),
  scope: z.enum(["user", "all"]),
  checked: z.number().int(),
  stale: z.number().int(),
  ghosts: z.number().int(),
  missingFromList: z.number().int(),
  listsChecked: z.number().int(),
  ok: z.boolean(),
  findings: z.array(z.strictObject({ id: z.number().int(), kind: z.enum(["stale", "ghost", "missingFromList"]), cached: z.string(), postgres: z.string() })),
});
const taskIdSchema = z.number().int().min(1).max(2147483647);
const evictBodySchema = z.strictObject({ id: taskIdSchema });
const evictResultSchema = z.strictObject({ id: taskIdSchema, evicted: z.boolean() });
const flushBodySchema = z.strictObject({ ids: z.array(taskIdSchema).max(200).optional() });
const flushResultSchema = z.strictObject({ flushed: z.literal(true), ids: z.number().int().min(0) });
const raceSideSchema = z.strictObject({ version: z.number().int(), title: z.string() });
const racePathSchema = z.strictObject({
  mismatchedRounds: z.number().int().min(0),
  refusedWrites: z.number().int().min(0),
  rounds: z.array(z.strictObject({ round: z.number().int(), postgres: raceSideSchema, cache: raceSideSchema.nullable(), match: z.boolean() })),
});
const raceResultSchema = z.strictObject({
  writers: z.number().int(),
  rounds: z.number().int(),
  maxDelayMs: z.number(),
  naive: racePathSchema,
  ours: racePathSchema,
  scratchTaskIds: z.array(taskIdSchema),
  durationMs: z.number(),
});
const repairSchema = z.strictObject({ repaired: z.number().int(), remaining: z.number().int() });
const apiKeySchema = z.strictObject({ id: z.string(), name: z.string(), createdAt: z.iso.datetime(), lastUsedAt: z.iso.datetime().optional() });
const newApiKeySchema = z.strictObject({ id: z.string(), name: z.string(), key: z.string().startsWith("wtk_"), createdAt: z.iso.datetime() });
const apiKeyListSchema = z.strictObject({ keys: z.array(apiKeySchema) });

const idParam = {
  name: "id",
  in: "path",
  required: true,
  description: "A positive integer in Postgres integer range, written with digits only.",
  schema: { type: "string", pattern: "^[1-9][0-9]{0,9}$" },
};
const ifMatch = { name: "If-Match", in: "header", required: false, schema: { type: "string" }, description: 'The ETag of the version you expect, like "v3", or *.' };
const idempotencyKey = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  schema: { type: "string", pattern: "^[\\x20-\\x7e]{1,255}$" },
  description: "Makes a retry safe: the same key again gets the first attempt's status and body, and nothing is written twice (kept 24 h, per user).",
};
const replayed = { "Idempotent-Replayed": { description: "true when this is the stored answer of an earlier attempt with the same Idempotency-Key.", schema: { type: "string", enum: ["true"] } } };
const keyReused = { "422": error("This Idempotency-Key was already used with a different request.") };
const cacheHeader = { "X-Cache": { description: "HIT, MISS or BYPASS: how the read was served.", schema: { type: "string", enum: ["HIT", "MISS", "BYPASS"] } } };
const listEtagHeader = { ETag: { description: "A validator of this page's whole content, for If-None-Match.", schema: { type: "string" } } };
const etagHeader = { ETag: { description: 'The task version, like "v3".', schema: { type: "string" } } };
const writeBodyErrors = {
  "400": error("Invalid id, body or JSON."),
  "413": error("Body over 16 KiB."),
  "415": error("Body not sent as application/json."),
};
const unavailable = {
  "503": {
    ...error("Postgres is unreachable or past its deadline."),
    headers: { "Retry-After": { description: "Seconds until a retry may succeed.", schema: { type: "string", pattern: "^[1-9][0-9]*$" } } },
  },
  "500": error("Unexpected error (details in the server log)."),
};
/** Who may call: a signed-in person (session cookie) or a program (API key as a bearer token). */
const signedIn = [{ sessionCookie: [] }, { apiKey: [] }];
const needsCredential = { "401": error("No valid session cookie or API key.") };
const crossOrigin = { "403": error("A cookie-authenticated write from another origin.") };
const limited = {
  "429": {
    ...error("Too many writes by this user in a short time (RATE_LIMIT_WRITES_PER_USER)."),
    headers: { "Retry-After": { description: "Seconds until the limit resets.", schema: { type: "string", pattern: "^[1-9][0-9]*$" } } },
  },
};
const authBody = (schema: object) => ({ required: true, content: { "application/json": { schema } } });
const betterAuthError = (description: string) =>
  jsonBody({ type: "object", properties: { code: { type: "string" }, message: { type: "string" } }, required: ["message"] }, description);
/** The whole-store audit and repair: an admin signed in (never an API key), or a scheduler's CRON_SECRET; own-tasks audits take any credential. */
const adminOnly = [{ sessionCookie: [] }, { apiKey: [] }, { cronSecret: [] }];
/** Managing API keys takes the person, signed in: a key can't make, list or revoke keys. */
const personOnly = [{ sessionCookie: [] }];
const notWithAKey = "Sent with an API key (managing keys takes a signed-in session)";

export function openApiDocument() {
  return {
    openapi: "3.1.0",
    info: {
      title: "writethrough-tasks",
      version: "1.0.0",
      description: `Tasks in Postgres behind a write-through Redis cache. Titles are trimmed, 1..${TITLE_MAX_CHARS} characters with at least one visible one, no control characters or bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069).`,
    },
    paths: {
      "/api/tasks": {
        get: {
          summary: "List tasks: a view (all, open or done), newest first or by due date, with counts",
          parameters: [
            { name: "limit", in: "query", required: false, schema: { type: "string", pattern: "^[1-9][0-9]{0,2}$" }, description: `1..${LIST_LIMIT_MAX}, default 50.` },
            { name: "cursor", in: "query", required: false, schema: { type: "string", pattern: "^[1-9][0-9]{0,15}$" }, description: "A nextCursor from an earlier page of the same view." },
            { name: "status", in: "query", required: false, schema: { type: "string", enum: ["all", "open", "done"] }, description: "Which tasks: all (default), open or done." },
            {
              name: "sort",
              in: "query",
              required: false,
              schema: { type: "string", enum: ["new", "due"] },
              description: "new (default): newest first. due: dated tasks by due date, then id; undated ones last.",
            },
            {
              name: "If-None-Match",
              in: "header",
              required: false,
              schema: { type: "string" },
              description: "The ETag of an earlier answer to the same query: a 304 while nothing in it (tasks, cursor, counts) has changed. How to follow changes without the event stream.",
            },
          ],
          security: signedIn,
          responses: {
            "200": { ...jsonBody(ref("TaskPage"), "A page of your tasks, and how many you have in all, open and done."), headers: { ...cacheHeader, ...listEtagHeader } },
            "304": { description: "Nothing in this page changed since the ETag sent in If-None-Match.", headers: { ...cacheHeader, ...listEtagHeader } },
            "400": error("Bad limit, cursor, status, sort or unknown parameter."),
            ...needsCredential,
            ...unavailable,
          },
        },
        post: {
          summary: "Create a task",
          security: signedIn,
          parameters: [idempotencyKey],
          requestBody: { required: true, content: { "application/json": { schema: ref("CreateTask") } } },
          responses: {
            "201": { ...jsonBody(ref("Task"), "The task, at version 1."), headers: { Location: { schema: { type: "string" } }, ...etagHeader, ...replayed } },
            ...writeBodyErrors,
            ...keyReused,
            ...needsCredential,
            ...crossOrigin,
            ...limited,
            ...unavailable,
          },
        },
      },
      "/api/tasks/{id}": {
        parameters: [idParam],
        get: {
          summary: "Read one task",
          security: signedIn,
          parameters: [{ name: "If-None-Match", in: "header", required: false, schema: { type: "string" } }],
          responses: {
            "200": { ...jsonBody(ref("Task"), "The task."), headers: { ...etagHeader, ...cacheHeader } },
            "304": { description: "Not modified: If-None-Match matched the current version." },
            "400": error("Invalid id."),
            ...needsCredential,
            "404": error("No such task of yours (another user's task answers the same)."),
            ...unavailable,
          },
        },
        patch: {
          summary: "Change a task's title and/or done",
          security: signedIn,
          parameters: [ifMatch, idempotencyKey],
          requestBody: { required: true, content: { "application/json": { schema: ref("UpdateTask") } } },
          responses: {
            "200": { ...jsonBody(ref("Task"), "The task at its new version."), headers: { ...etagHeader, ...replayed } },
            ...writeBodyErrors,
            ...keyReused,
            ...needsCredential,
            ...crossOrigin,
            ...limited,
            "404": error("No such task of yours."),
            "412": error("If-Match does not match the current version."),
            ...unavailable,
          },
        },
        delete: {
          summary: "Delete a task",
          security: signedIn,
          parameters: [ifMatch, idempotencyKey],
          responses: {
            "204": { description: "Deleted.", headers: replayed },
            "400": error("Invalid id or Idempotency-Key."),
            ...keyReused,
            ...needsCredential,
            ...crossOrigin,
            ...limited,
            "404": error("No such task of yours (or already deleted)."),
            "412": error("If-Match does not match the current version."),
            ...unavailable,
          },
        },
      },
      "/api/tasks/{id}/restore": {
        parameters: [idParam],
        post: {
          summary: "Undo a delete: the same task back, at the next version",
          security: signedIn,
          parameters: [idempotencyKey],
          responses: {
            "200": { ...jsonBody(ref("Task"), "The task, restored, at the version after its delete."), headers: { ...etagHeader, ...replayed } },
            "400": error("Invalid id or Idempotency-Key."),
            ...needsCredential,
            ...crossOrigin,
            "404": error("No task of yours deleted in the last 30 days with that id."),
            "409": error("The task is not deleted."),
            ...keyReused,
            ...limited,
            ...unavailable,
          },
        },
      },
      "/api/tasks/events": {
        get: {
          summary: "Your task changes as they happen, from every instance (Server-Sent Events)",
          description:
            "`event: ready` once subscribed (reread your lists then: changes are not replayed, also after a reconnect), then `event: change` with `{ op, id, version, task? }` per task change (create, update, delete, restore; `task` is the new state, absent for a delete), `event: resync` when changes may have been missed. Apply changes by version: ignore one no newer than what you have. Ends when your credential stops holding.",
          security: signedIn,
          responses: {
            "200": { description: "The event stream.", content: { "text/event-stream": { schema: { type: "string" } } } },
            ...needsCredential,
            "409": error("This server has no live updates (an Upstash cache): poll GET /api/tasks with If-None-Match."),
            ...unavailable,
          },
        },
      },
      "/api/tasks/batch": {
        post: {
          summary: `One operation on 1..${BATCH_MAX_IDS} of your tasks: complete, reopen, delete or restore, all or nothing`,
          security: signedIn,
          parameters: [idempotencyKey],
          requestBody: { required: true, content: { "application/json": { schema: ref("Batch") } } },
          responses: {
            "200": { ...jsonBody(ref("BatchResult"), "The tasks as the batch left them (complete, reopen, restore), or the ids it deleted."), headers: replayed },
            ...writeBodyErrors,
            ...needsCredential,
            ...crossOrigin,
            "404": error("One or more ids are not tasks of yours (live ones; for restore, deleted in the last 30 days). Nothing was changed."),
            "409": error("A restore named a task that is not deleted. Nothing was changed."),
            ...keyReused,
            ...limited,
            ...unavailable,
          },
        },
      },
      "/api/health": {
        get: {
          summary: "Health of Postgres and the cache",
          responses: { "200": jsonBody(ref("Health"), "ok, or degraded when only the cache is down."), "503": jsonBody(ref("Health"), "Postgres is unreachable.") },
        },
      },
      "/api/metrics": {
        get: {
          summary: "Prometheus metrics (Bearer METRICS_TOKEN when that is set)",
          security: [{}, { metricsToken: [] }],
          responses: {
            "200": { description: "Prometheus text format.", content: { "text/plain": { schema: { type: "string" } } } },
            "401": error("METRICS_TOKEN is set and the bearer token is missing or wrong."),
          },
        },
      },
      "/api/cache/audit": {
        get: {
          summary: "Compare the cache with Postgres: your tasks, or (scope=all, admins and schedulers) every user's",
          security: adminOnly,
          parameters: [{ name: "scope", in: "query", required: false, schema: { type: "string", enum: ["mine", "all"] } }],
          responses: {
            "200": jsonBody(ref("AuditReport"), "The audit report."),
            "400": error("Bad scope."),
            ...needsCredential,
            "403": error("scope=all needs an admin signed in (an email in ADMIN_EMAILS; never an API key) or the CRON_SECRET."),
            ...unavailable,
          },
        },
      },
      "/api/cache/repair": Object.fromEntries(
        ["get", "post"].map((m) => [
          m,
          {
            summary: m === "get" ? "Run one cache repair pass (schedulers with the CRON_SECRET)" : "Run one cache repair pass (admins, or the CRON_SECRET)",
            security: m === "get" ? [{ cronSecret: [] }] : adminOnly,
            responses: {
              "200": jsonBody(ref("RepairResult"), "Repairs done and still owed."),
              ...needsCredential,
              "403": error(m === "get" ? "Signed in, but GET runs repairs only for the CRON_SECRET." : "Not an admin signed in (API keys never are), or an admin's cookie from another origin."),
              ...unavailable,
            },
          },
        ]),
      ),
      "/api/keys": {
        get: {
          summary: "Your API keys (never their secrets)",
          security: personOnly,
          responses: { "200": jsonBody(ref("ApiKeyList"), "Newest first."), ...needsCredential, "403": error(`${notWithAKey}.`), ...unavailable },
        },
        post: {
          summary: "Create an API key; the secret is in this answer only",
          security: personOnly,
          requestBody: { required: true, content: { "application/json": { schema: ref("CreateApiKey") } } },
          responses: {
            "201": jsonBody(ref("NewApiKey"), "The key, with its secret."),
            ...writeBodyErrors,
            ...needsCredential,
            "403": error(`${notWithAKey}, or a cookie-authenticated write from another origin.`),
            ...limited,
            ...unavailable,
          },
        },
      },
      "/api/keys/{id}": {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" } }],
        delete: {
          summary: "Revoke an API key: it stops working at once, on every instance",
          security: personOnly,
          responses: {
            "204": { description: "Revoked." },
            "400": error("Invalid id."),
            ...needsCredential,
            "403": error(`${notWithAKey}, or a cookie-authenticated write from another origin.`),
            ...limited,
            "404": error("No such key of yours."),
            ...unavailable,
          },
        },
      },
      "/api/cache/state": {
        get: {
          summary: "What the cache lab page shows",
          parameters: [
            { name: "ids", in: "query", required: false, schema: { type: "string" } },
            { name: "after", in: "query", required: false, schema: { type: "string" } },
          ],
          security: signedIn,
          responses: { "200": jsonBody({ type: "object" }, "Your tasks in Postgres and the cache side by side, and your cache events."), "400": error("Bad ids or after."), ...needsCredential, ...unavailable },
        },
      },
      "/api/cache/evict": {
        post: {
          summary: "Cache lab: drop one of your tasks' cache entries, so its next read misses, fills and then hits",
          security: signedIn,
          requestBody: { required: true, content: { "application/json": { schema: ref("EvictRequest") } } },
          responses: {
            "200": jsonBody(ref("EvictResult"), "evicted is false when nothing live was cached for it."),
            ...writeBodyErrors,
            ...needsCredential,
            ...crossOrigin,
            "404": error("No task of yours has that id."),
            "409": error("This server runs without a cache (CACHE_DRIVER=none)."),
            ...limited,
            ...unavailable,
          },
        },
      },
      "/api/cache/flush": {
        post: {
          summary: "Cache lab: flush your cache slot (your epoch ends; every entry and list view reads as a miss)",
          security: signedIn,
          requestBody: { required: false, content: { "application/json": { schema: ref("FlushRequest") } } },
          responses: {
            "200": jsonBody(ref("FlushResult"), "How many task ids were evicted-if-cached."),
            ...writeBodyErrors,
            ...needsCredential,
            ...crossOrigin,
            "409": error("This server runs without a cache (CACHE_DRIVER=none)."),
            ...limited,
            ...unavailable,
          },
        },
      },
      "/api/cache/race": {
        post: {
          summary: "Cache lab: race 16 concurrent renames of a scratch task for 10 rounds through a naive cache and through ours",
          security: signedIn,
          responses: {
            "200": jsonBody(ref("RaceResult"), "Each path's rounds, and how many ended with the cache unlike Postgres."),
            ...needsCredential,
            ...crossOrigin,
            "409": error("A race demo of yours is already running, or this server runs without a cache."),
            "429": { ...limited["429"], description: "You ran the race demo a few seconds ago, or wrote too much in a short time." },
            ...unavailable,
          },
        },
      },
      "/api/auth/sign-up/email": {
        post: {
          summary: "Create an account and sign in (better-auth); sets the session cookie",
          security: [],
          requestBody: authBody({
            type: "object",
            required: ["name", "email", "password"],
            properties: { name: { type: "string" }, email: { type: "string", format: "email" }, password: { type: "string", minLength: 8, maxLength: 128 } },
          }),
          responses: {
            "200": { ...jsonBody({ type: "object" }, "Signed up; Set-Cookie carries the session."), headers: { "Set-Cookie": { schema: { type: "string" } } } },
            "400": betterAuthError("Bad email, or a password outside 8..128 characters; a blank or overlong name comes as the Error shape, naming `name`."),
            "415": error("Body not sent as application/json."),
            "403": betterAuthError("A browser request from another origin."),
            "422": betterAuthError("An account with this email exists."),
            "429": { ...error("Too many sign-ups from this address (RATE_LIMIT_SIGN_UPS_PER_IP)."), headers: limited["429"].headers },
          },
        },
      },
      "/api/auth/sign-in/email": {
        post: {
          summary: "Sign in (better-auth); sets the session cookie",
          security: [],
          requestBody: authBody({ type: "object", required: ["email", "password"], properties: { email: { type: "string" }, password: { type: "string" } } }),
          responses: {
            "200": { ...jsonBody({ type: "object" }, "Signed in; Set-Cookie carries the session."), headers: { "Set-Cookie": { schema: { type: "string" } } } },
            "400": betterAuthError("Not an email address."),
            "401": betterAuthError("Wrong email or password (one answer for both)."),
            "415": error("Body not sent as application/json."),
            "403": betterAuthError("A browser request from another origin."),
            "429": { ...error("Too many failed sign-ins from this address or for this email."), headers: limited["429"].headers },
          },
        },
      },
      "/api/auth/sign-out": {
        post: {
          summary: "Sign out: the session stops working at once, on every instance",
          security: [{ sessionCookie: [] }],
          responses: { "200": jsonBody({ type: "object" }, "Signed out; the cookie is cleared."), "403": betterAuthError("Another origin.") },
        },
      },
      "/api/ping": { get: { summary: "The cheapest route (benchmark ceiling)", responses: { "200": jsonBody({ type: "object", properties: { ok: { type: "boolean" } } }, "Always ok.") } } },
      "/api/openapi.json": { get: { summary: "This document", responses: { "200": jsonBody({ type: "object" }, "OpenAPI 3.1.") } } },
    },
    components: {
      schemas: {
        Task: json(taskResponseSchema),
        TaskPage: json(pageSchema),
        Batch: json(batchSchema, "input"),
        BatchResult: json(batchResultSchema),
        CreateTask: json(createTaskSchema, "input"),
        UpdateTask: json(updateTaskSchema, "input"),
        Error: json(errorSchema),
        Health: json(healthSchema),
        AuditReport: json(auditSchema),
        RepairResult: json(repairSchema),
        EvictRequest: json(evictBodySchema, "input"),
        EvictResult: json(evictResultSchema),
        FlushRequest: json(flushBodySchema, "input"),
        FlushResult: json(flushResultSchema),
        RaceResult: json(raceResultSchema),
        ApiKey: json(apiKeySchema),
        ApiKeyList: json(apiKeyListSchema),
        NewApiKey: json(newApiKeySchema),
        CreateApiKey: json(createApiKeySchema, "input"),
      },
      securitySchemes: {
        sessionCookie: {
          type: "apiKey",
          in: "cookie",
          name: "better-auth.session_token",
          description: "Set by POST /api/auth/sign-in/email or /api/auth/sign-up/email (HttpOnly, SameSite=Lax; __Secure- prefixed over https).",
        },
        apiKey: { type: "http", scheme: "bearer", description: "An API key from POST /api/keys: `Authorization: Bearer wtk_...`." },
        cronSecret: { type: "http", scheme: "bearer", description: "The server's CRON_SECRET, for schedulers." },
        metricsToken: { type: "http", scheme: "bearer", description: "The server's METRICS_TOKEN, for Prometheus." },
      },
    },
  };
}
