import Ajv2020 from "ajv/dist/2020";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openApiDocument } from "@/lib/http/openapi";
import { auditCache, health, repairCache } from "@/lib/http/opsHandlers";
import { createKey } from "@/lib/http/keyHandlers";
import { cacheState } from "@/lib/http/opsHandlers";
import { evictRoute, flushRoute, raceRoute, RaceGate, type LabContext } from "@/lib/lab/handlers";
import { batchTasks, createTask, deleteTask, getTask, listTasks, taskEvents, updateTask, type TasksFor } from "@/lib/http/taskHandlers";
import { createAuth, rateLimiterFor } from "@/lib/auth";
import { TaskError } from "@/lib/tasks/errors";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";

type Doc = ReturnType<typeof openApiDocument>;
type Operation = { responses: Record<string, { content?: Record<string, { schema: object }> }> };

/** Replaces "#/components/schemas/X" references with the schemas themselves. */
function resolve(node: unknown, doc: Doc): unknown {
  if (Array.isArray(node)) return node.map((n) => resolve(n, doc));
  if (node && typeof node === "object") {
    const ref = (node as { $ref?: string }).$ref;
    if (ref?.startsWith("#/components/schemas/")) {
      return resolve((doc.components.schemas as Record<string, unknown>)[ref.slice("#/components/schemas/".length)], doc);
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolve(v, doc)]));
  }
  return node;
}

describe("OpenAPI document matches what the API really answers", () => {
  const doc = openApiDocument();
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  let env: TestEnv;
  let store: TaskStore;
  let source: TasksFor;
  const seen: string[] = [];

  beforeAll(async () => {
    env = await createTestEnv(BACKENDS.find((b) => b.cacheDriver === "memory")!);
    store = await env.openStore();
    source = async () => store.forUser(env.userId);
  });
  afterAll(async () => {
    await env.cleanup();
  });

  async function check(path: keyof Doc["paths"], method: string, res: Response) {
    const operation = (doc.paths[path] as Record<string, Operation>)[method];
    expect(operation, `${method} ${path} is documented`).toBeDefined();
    const documented = operation!.responses[String(res.status)];
    expect(documented, `${method.toUpperCase()} ${path} → ${res.status} is documented`).toBeDefined();
    seen.push(`${method} ${path} ${res.status}`);
    const schema = documented!.content?.["application/json"]?.schema;
    if (!schema) return;
    const body: unknown = await res.json();
    const validate = ajv.compile(resolve(schema, doc) as object);
    expect(validate(body), `${method} ${path} ${res.status}: ${JSON.stringify(validate.errors)} for ${JSON.stringify(body)}`).toBe(true);
  }

  const req = (url: string, init?: RequestInit) => new Request(`http://x${url}`, init);
  const jsonInit = (method: string, body: unknown, headers: Record<string, string> = {}) => ({
    method,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

  test("every route and status the tests can provoke is documented, and every JSON body fits its schema", async () => {
    const created = await createTask(source, req("/api/tasks", jsonInit("POST", { title: "documented" })));
    const task = (await created.clone().json()) as { id: number };
    await check("/api/tasks", "post", created);
    await check("/api/tasks", "post", await createTask(source, req("/api/tasks", jsonInit("POST", { title: "" }))));
    await check("/api/tasks", "post", await createTask(source, req("/api/tasks", { method: "POST", body: "x" })));
    await check("/api/tasks", "post", await createTask(source, req("/api/tasks", jsonInit("POST", { title: "x".repeat(20_000) }))));
    const listed = await listTasks(source, req("/api/tasks?limit=1"));
    await check("/api/tasks", "get", listed.clone());
    await check("/api/tasks", "get", await listTasks(source, req("/api/tasks?limit=1", { headers: { "if-none-match": listed.headers.get("etag")! } })));
    await check("/api/tasks", "get", await listTasks(source, req("/api/tasks?limit=0")));
    await check("/api/tasks/{id}", "get", await getTask(source, req(`/api/tasks/${task.id}`), String(task.id)));
    await check("/api/tasks/{id}", "get", await getTask(source, req(`/api/tasks/${task.id}`, { headers: { "if-none-match": '"v1"' } }), String(task.id)));
    await check("/api/tasks/{id}", "get", await getTask(source, req("/api/tasks/1abc"), "1abc"));
    await check("/api/tasks/{id}", "get", await getTask(source, req("/api/tasks/2147483647"), "2147483647"));
    await check("/api/tasks/{id}", "patch", await updateTask(source, req(`/api/tasks/${task.id}`, jsonInit("PATCH", { done: true })), String(task.id)));
    await check("/api/tasks/{id}", "patch", await updateTask(source, req(`/api/tasks/${task.id}`, jsonInit("PATCH", { done: false }, { "if-match": '"v1"' })), String(task.id)));
    await check("/api/tasks/{id}", "patch", await updateTask(source, req(`/api/tasks/${task.id}`, jsonInit("PATCH", {})), String(task.id)));
    await check("/api/tasks/{id}", "patch", await updateTask(source, req("/api/tasks/2147483647", jsonInit("PATCH", { done: true })), "2147483647"));
    await check("/api/tasks/{id}", "delete", await deleteTask(source, req(`/api/tasks/${task.id}`, { method: "DELETE", headers: { "if-match": '"v1"' } }), String(task.id)));
    await check("/api/tasks/{id}", "delete", await deleteTask(source, req(`/api/tasks/${task.id}`, { method: "DELETE" }), String(task.id)));
    await check("/api/tasks/{id}", "delete", await deleteTask(source, req(`/api/tasks/${task.id}`, { method: "DELETE" }), String(task.id)));
    await check("/api/tasks/{id}", "delete", await deleteTask(source, req("/api/tasks/0", { method: "DELETE" }), "0"));
    const other = await createTask(source, req("/api/tasks", jsonInit("POST", { title: "batched", dueOn: "2030-06-01" })));
    const otherId = ((await other.json()) as { id: number }).id;
    await check("/api/tasks", "get", await listTasks(source, req("/api/tasks?status=open&sort=due")));
    await check("/api/tasks", "get", await listTasks(source, req("/api/tasks?sort=sideways")));
    await check("/api/tasks/batch", "post", await batchTasks(source, req("/api/tasks/batch", jsonInit("POST", { op: "complete", ids: [otherId] }))));
    await check("/api/tasks/batch", "post", await batchTasks(source, req("/api/tasks/batch", jsonInit("POST", { op: "delete", ids: [otherId] }))));
    await check("/api/tasks/batch", "post", await batchTasks(source, req("/api/tasks/batch", jsonInit("POST", { op: "complete", ids: [otherId] }))));
    await check("/api/tasks/batch", "post", await batchTasks(source, req("/api/tasks/batch", jsonInit("POST", { op: "restore", ids: [otherId] }))));
    await check("/api/tasks/batch", "post", await batchTasks(source, req("/api/tasks/batch", jsonInit("POST", { op: "restore", ids: [otherId] }))));
    await check("/api/tasks/batch", "post", await batchTasks(source, req("/api/tasks/batch", jsonInit("POST", { op: "explode", ids: [otherId] }))));
    const down = async (): Promise<never> => {
      throw new TaskError("service_unavailable", "The database is unavailable.");
    };
    const anonymous = async (): Promise<never> => {
      throw new TaskError("unauthorized", "Sign in.");
    };
    await check("/api/tasks", "get", await listTasks(down, req("/api/tasks")));
    await check("/api/tasks", "get", await listTasks(anonymous, req("/api/tasks")));
    await check("/api/tasks/events", "get", await taskEvents(source, req("/api/tasks/events")));
    await check("/api/tasks/events", "get", await taskEvents(anonymous, req("/api/tasks/events")));
    await check("/api/health", "get", await health(async () => store));
    await check("/api/health", "get", await health(down));
    const secret = "a-secret-of-sixteen+";
    const ops = (principal: "user" | "admin" | null) => ({
      store: async () => store,
      principal: async () => (principal ? { userId: env.userId, via: "session" as const, email: `${principal}@example.test` } : null),
      cronSecret: secret,
      adminEmails: ["admin@example.test"],
    });
    await check("/api/cache/audit", "get", await auditCache(ops("user"), req("/api/cache/audit")));
    await check("/api/cache/audit", "get", await auditCache(ops("user"), req("/api/cache/audit?scope=all")));
    await check("/api/cache/audit", "get", await auditCache(ops(null), req("/api/cache/audit")));
    await check("/api/cache/audit", "get", await auditCache(ops(null), req("/api/cache/audit?scope=nope")));
    await check("/api/cache/repair", "post", await repairCache(ops("admin"), req("/api/cache/repair", { method: "POST" })));
    await check("/api/cache/repair", "post", await repairCache(ops("user"), req("/api/cache/repair", { method: "POST" })));
    await check("/api/cache/repair", "get", await repairCache(ops(null), req("/api/cache/repair")));
    await check("/api/cache/repair", "get", await repairCache(ops(null), req("/api/cache/repair", { headers: { authorization: `Bearer ${secret}` } })));
    await check("/api/cache/state", "get", await cacheState(ops("user"), req("/api/cache/state?ids=1")));
    await check("/api/cache/state", "get", await cacheState(ops(null), req("/api/cache/state")));
    const lab = (signed: boolean, races = new RaceGate(60_000)): LabContext => ({
      store: async () => store,
      principal: async () => (signed ? { userId: env.userId, via: "apiKey" as const } : null),
      limitWrite: async () => {},
      races,
    });
    await check("/api/cache/evict", "post", await evictRoute(lab(true), req("/api/cache/evict", jsonInit("POST", { id: otherId }))));
    await check("/api/cache/evict", "post", await evictRoute(lab(true), req("/api/cache/evict", jsonInit("POST", { id: 2147483647 }))));
    await check("/api/cache/evict", "post", await evictRoute(lab(true), req("/api/cache/evict", jsonInit("POST", { id: "one" }))));
    await check("/api/cache/evict", "post", await evictRoute(lab(false), req("/api/cache/evict", jsonInit("POST", { id: otherId }))));
    await check("/api/cache/flush", "post", await flushRoute(lab(true), req("/api/cache/flush", jsonInit("POST", { ids: [otherId] }))));
    await check("/api/cache/flush", "post", await flushRoute(lab(true), req("/api/cache/flush", jsonInit("POST", { ids: "all" }))));
    const races = new RaceGate(60_000);
    await check("/api/cache/race", "post", await raceRoute(lab(true, races), req("/api/cache/race", { method: "POST" })));
    await check("/api/cache/race", "post", await raceRoute(lab(true, races), req("/api/cache/race", { method: "POST" })));
    await check("/api/cache/race", "post", await raceRoute(lab(false), req("/api/cache/race", { method: "POST" })));
    const keyCtx = { store: async () => store, auth: async () => createAuth(store, { secret: "x".repeat(32) }), limiter: async () => rateLimiterFor(store, true) };
    const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
    const made = await createKey(req("/api/keys", jsonInit("POST", { name: "docs" }, bearer("wtk_not-a-key"))), keyCtx);
    await check("/api/keys", "post", made);
    expect(made.status).toBe(401);
    expect(seen).toHaveLength(53);
    expect(seen).toEqual(expect.arrayContaining(["get /api/tasks 304", "get /api/tasks/events 409", "get /api/tasks/events 401"]));
    // The lab routes answered each status checked above, not only one.
    expect(seen.filter((s) => /^post \/api\/cache\/(evict|flush|race) /.test(s)).map((s) => s.split(" ").slice(1).join(" "))).toEqual([
      "/api/cache/evict 200",
      "/api/cache/evict 404",
      "/api/cache/evict 400",
      "/api/cache/evict 401",
      "/api/cache/flush 200",
      "/api/cache/flush 400",
      "/api/cache/race 200",
      "/api/cache/race 429",
      "/api/cache/race 401",
    ]);
  });

  test("the document is OpenAPI 3.1 and every operation lists its error statuses", () => {
    expect(doc.openapi).toBe("3.1.0");
    const tasksItem = doc.paths["/api/tasks/{id}"];
    expect(Object.keys(tasksItem.patch.responses).sort()).toEqual(["200", "400", "401", "403", "404", "412", "413", "415", "422", "429", "500", "503"]);
    expect(Object.keys(tasksItem.get.responses).sort()).toEqual(["200", "304", "400", "401", "404", "500", "503"]);
    expect(Object.keys(tasksItem.delete.responses).sort()).toEqual(["204", "400", "401", "403", "404", "412", "422", "429", "500", "503"]);
    // Every task and key operation says which credentials it takes: tasks a cookie or a key, keys only a cookie.
    for (const [path, security] of [
      ["/api/tasks", [{ sessionCookie: [] }, { apiKey: [] }]],
      ["/api/tasks/{id}", [{ sessionCookie: [] }, { apiKey: [] }]],
      ["/api/keys", [{ sessionCookie: [] }]],
      ["/api/keys/{id}", [{ sessionCookie: [] }]],
    ] as const) {
      for (const [method, op] of Object.entries(doc.paths[path])) {
        if (method === "parameters") continue;
        expect((op as { security?: unknown }).security, `${method} ${path}`).toEqual(security);
        if (path.startsWith("/api/keys")) expect(Object.keys((op as { responses: object }).responses), `${method} ${path}`).toContain("403");
      }
    }
  });

  test("the schemas refuse what the API must never send", () => {
    const validTask = { id: 1, title: "t", done: false, version: 1, dueOn: null, createdAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-01T00:00:00.000Z" };
    const task = ajv.compile(resolve(doc.components.schemas.Task, doc) as object);
    expect(task(validTask)).toBe(true);
    expect(task({ ...validTask, id: "1" })).toBe(false);
    expect(task({ ...validTask, stack: "at x.ts:1" })).toBe(false);
    const err = ajv.compile(resolve(doc.components.schemas.Error, doc) as object);
    expect(err({ error: { code: "not_found", message: "m" } })).toBe(true);
    expect(err({ error: { code: "ECONNREFUSED", message: "m" } })).toBe(false);
  });
});
