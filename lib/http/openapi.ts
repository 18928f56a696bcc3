import { z } from "zod";
import { STATUS_BY_CODE, type TaskErrorCode } from "../tasks/errors";
import { createTaskSchema, LIST_LIMIT_MAX, taskResponseSchema, TITLE_MAX_CHARS, updateTaskSchema } from "../tasks/schema";

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
const pageSchema = z.strictObject({ tasks: z.array(taskResponseSchema), nextCursor: z.string().regex(/^[1-9][0-9]*$/).nullable() });
const probe = z.strictObject({ ok: z.boolean(), latencyMs: z.number().nullable() });
const healthSchema = z.strictObject({
  status: z.enum(["ok", "degraded", "down"]),
  db: probe,
  cache: z.strictObject({
    driver: z.enum(["redis", "upstash", "memory", "none"]),
    ok: z.boolean(),
    latencyMs: z.number().nullable(),
    breaker: z.enum(["closed", "open", "half-open"]).nullable(),
  }),
});
const auditSchema = z.strictObject({
  driver: z.enum(["redis", "upstash", "memory", "none"]),
  checked: z.number().int(),
  stale: z.number().int(),
  ghosts: z.number().int(),
  missingFromList: z.number().int(),
  listIndexed: z.boolean(),
  ok: z.boolean(),
  findings: z.array(z.strictObject({ id: z.number().int(), kind: z.enum(["stale", "ghost", "missingFromList"]), cached: z.string(), postgres: z.string() })),
});
const repairSchema = z.strictObject({ repaired: z.number().int(), remaining: z.number().int() });

const idParam = {
  name: "id",
  in: "path",
  required: true,
  description: "A positive integer in Postgres integer range, written with digits only.",
  schema: { type: "string", pattern: "^[1-9][0-9]{0,9}$" },
};
const ifMatch = { name: "If-Match", in: "header", required: false, schema: { type: "string" }, description: 'The ETag of the version you expect, like "v3", or *.' };
const cacheHeader = { "X-Cache": { description: "HIT, MISS or BYPASS: how the read was served.", schema: { type: "string", enum: ["HIT", "MISS", "BYPASS"] } } };
const etagHeader = { ETag: { description: 'The task version, like "v3".', schema: { type: "string" } } };
const writeBodyErrors = {
  "400": error("Invalid id, body or JSON."),
  "413": error("Body over 16 KiB."),
  "415": error("Body not sent as application/json."),
};
const unavailable = { "503": error("Postgres is unreachable."), "500": error("Unexpected error (details in the server log).") };

export function openApiDocument() {
  return {
    openapi: "3.1.0",
    info: {
      title: "writethrough-tasks",
      version: "1.0.0",
      description: `Tasks in Postgres behind a write-through Redis cache. Titles are trimmed, 1..${TITLE_MAX_CHARS} characters, no control characters.`,
    },
    paths: {
      "/api/tasks": {
        get: {
          summary: "List tasks, newest first",
          parameters: [
            { name: "limit", in: "query", required: false, schema: { type: "string", pattern: "^[1-9][0-9]{0,2}$" }, description: `1..${LIST_LIMIT_MAX}, default 50.` },
            { name: "cursor", in: "query", required: false, schema: { type: "string", pattern: "^[1-9][0-9]{0,9}$" }, description: "A nextCursor from an earlier page." },
          ],
          responses: { "200": { ...jsonBody(ref("TaskPage"), "A page of tasks."), headers: cacheHeader }, "400": error("Bad limit, cursor or unknown parameter."), ...unavailable },
        },
        post: {
          summary: "Create a task",
          requestBody: { required: true, content: { "application/json": { schema: ref("CreateTask") } } },
          responses: {
            "201": { ...jsonBody(ref("Task"), "The task, at version 1."), headers: { Location: { schema: { type: "string" } }, ...etagHeader } },
            ...writeBodyErrors,
            ...unavailable,
          },
        },
      },
      "/api/tasks/{id}": {
        parameters: [idParam],
        get: {
          summary: "Read one task",
          parameters: [{ name: "If-None-Match", in: "header", required: false, schema: { type: "string" } }],
          responses: {
            "200": { ...jsonBody(ref("Task"), "The task."), headers: { ...etagHeader, ...cacheHeader } },
            "304": { description: "Not modified: If-None-Match matched the current version." },
            "400": error("Invalid id."),
            "404": error("No such task."),
            ...unavailable,
          },
        },
        patch: {
          summary: "Change a task's title and/or done",
          parameters: [ifMatch],
          requestBody: { required: true, content: { "application/json": { schema: ref("UpdateTask") } } },
          responses: {
            "200": { ...jsonBody(ref("Task"), "The task at its new version."), headers: etagHeader },
            ...writeBodyErrors,
            "404": error("No such task."),
            "412": error("If-Match does not match the current version."),
            ...unavailable,
          },
        },
        delete: {
          summary: "Delete a task",
          parameters: [ifMatch],
          responses: {
            "204": { description: "Deleted." },
            "400": error("Invalid id."),
            "404": error("No such task (or already deleted)."),
            "412": error("If-Match does not match the current version."),
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
      "/api/metrics": { get: { summary: "Prometheus metrics", responses: { "200": { description: "Prometheus text format.", content: { "text/plain": { schema: { type: "string" } } } } } } },
      "/api/cache/audit": { get: { summary: "Compare the cache with Postgres", responses: { "200": jsonBody(ref("AuditReport"), "The audit report."), ...unavailable } } },
      "/api/cache/repair": Object.fromEntries(
        ["get", "post"].map((m) => [
          m,
          {
            summary: "Run one cache repair pass (for schedulers)",
            responses: { "200": jsonBody(ref("RepairResult"), "Repairs done and still owed."), "401": error("CRON_SECRET is set and the bearer token is missing or wrong."), ...unavailable },
          },
        ]),
      ),
      "/api/cache/state": {
        get: {
          summary: "What the cache lab page shows",
          parameters: [
            { name: "ids", in: "query", required: false, schema: { type: "string" } },
            { name: "after", in: "query", required: false, schema: { type: "string" } },
          ],
          responses: { "200": jsonBody({ type: "object" }, "Cache state, tasks side by side, events."), "400": error("Bad ids or after."), ...unavailable },
        },
      },
      "/api/ping": { get: { summary: "The cheapest route (benchmark ceiling)", responses: { "200": jsonBody({ type: "object", properties: { ok: { type: "boolean" } } }, "Always ok.") } } },
      "/api/openapi.json": { get: { summary: "This document", responses: { "200": jsonBody({ type: "object" }, "OpenAPI 3.1.") } } },
    },
    components: {
      schemas: {
        Task: json(taskResponseSchema),
        TaskPage: json(pageSchema),
        CreateTask: json(createTaskSchema, "input"),
        UpdateTask: json(updateTaskSchema, "input"),
        Error: json(errorSchema),
        Health: json(healthSchema),
        AuditReport: json(auditSchema),
        RepairResult: json(repairSchema),
      },
    },
  };
}
