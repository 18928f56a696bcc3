import { randomUUID } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openDatabase, type Database } from "@/lib/db/client";
import { createTask, deleteTask, getTask, listTasks, restoreTask, updateTask, type TasksFor } from "@/lib/http/taskHandlers";
import { TaskError, type ErrorBody } from "@/lib/tasks/errors";
import * as queries from "@/lib/tasks/queries";
import { tasks as tasksTable } from "@/lib/db/schema";
import { eq } from "drizzle-orm";
import type { CacheDriverChoice } from "@/lib/names";
import type { Task } from "@/lib/tasks/schema";
import { authenticate, rateLimiterFor, tasksForWith, type Auth } from "@/lib/auth";
import { createKey } from "@/lib/http/keyHandlers";
import { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, makeCache, type TestBackend, type TestEnv } from "../support/backends";
import { byteLength, jsonRequest, rawRequest, streamOf, type HeaderMap, type RawBody } from "../support/http";
import { deleteKeysWithPrefix, TEST_REDIS_URL, uniqueName } from "../support/services";
import { apiRequest, signUp, testAuth } from "../support/auth";

// The REST contract of /api/tasks, driven through the route handlers with standard Requests, on
// every backend. Each refused request is checked to have changed nothing, in Postgres and as the
// API (through the cache) serves it.

// ---- a client over the handlers --------------------------------------------------------------

function taskPath(id: string | number): string {
  return `/api/tasks/${encodeURIComponent(String(id))}`;
}

function apiFor(getStore: TasksFor) {
  return {
    list: (query = "", headers: HeaderMap = {}) => listTasks(getStore, rawRequest("GET", `/api/tasks${query}`, { headers })),
    create: (value: unknown, headers: HeaderMap = {}) => createTask(getStore, jsonRequest("POST", "/api/tasks", value, headers)),
    createRaw: (body: RawBody | undefined, headers: HeaderMap) => createTask(getStore, rawRequest("POST", "/api/tasks", { body, headers })),
    get: (id: string | number, headers: HeaderMap = {}) => getTask(getStore, rawRequest("GET", taskPath(id), { headers }), String(id)),
    patch: (id: string | number, value: unknown, headers: HeaderMap = {}) =>
      updateTask(getStore, jsonRequest("PATCH", taskPath(id), value, headers), String(id)),
    patchRaw: (id: string | number, body: RawBody | undefined, headers: HeaderMap) =>
      updateTask(getStore, rawRequest("PATCH", taskPath(id), { body, headers }), String(id)),
    remove: (id: string | number, headers: HeaderMap = {}) => deleteTask(getStore, rawRequest("DELETE", taskPath(id), { headers }), String(id)),
    restore: (id: string | number, headers: HeaderMap = {}) => restoreTask(getStore, rawRequest("POST", `${taskPath(id)}/restore`, { headers }), String(id)),
  };
}
type Api = ReturnType<typeof apiFor>;

// ---- reading responses -----------------------------------------------------------------------

type Read = { status: number; headers: Headers; text: string; body: unknown };

async function read(res: Response): Promise<Read> {
  const text = await res.text();
  let body: unknown = undefined;
  if (text !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: res.status, headers: res.headers, text, body };
}

/** A JSON response with `status`; failures show the body. */
async function expectJson(res: Response, status: number): Promise<Read> {
  const r = await read(res);
  expect(r.status, `status of a response with body ${r.text}`).toBe(status);
  expect(r.headers.get("content-type")).toMatch(/^application\/json(;|$)/);
  return r;
}

const TASK_KEYS = ["createdAt", "done", "dueOn", "id", "title", "updatedAt", "version"];
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function expectTaskShape(value: unknown): Task {
  expect(value).toBeTypeOf("object");
  expect(value).not.toBeNull();
  const t = value as Record<string, unknown>;
  expect(Object.keys(t).sort()).toEqual(TASK_KEYS);
  expect(Number.isInteger(t.id) && (t.id as number) > 0, `id ${String(t.id)}`).toBe(true);
  expect(t.title).toBeTypeOf("string");
  expect(t.done).toBeTypeOf("boolean");
  expect(t.dueOn === null || (typeof t.dueOn === "string" && /^\d{4}-\d{2}-\d{2}$/.test(t.dueOn)), `dueOn ${String(t.dueOn)}`).toBe(true);
  expect(Number.isInteger(t.version) && (t.version as number) >= 1, `version ${String(t.version)}`).toBe(true);
  for (const key of ["createdAt", "updatedAt"]) {
    expect(t[key]).toMatch(ISO_INSTANT);
    expect(new Date(t[key] as string).toISOString()).toBe(t[key]);
  }
  return t as Task;
}

async function taskFrom(res: Response, status = 200): Promise<Task> {
  return expectTaskShape((await expectJson(res, status)).body);
}

type Page = { tasks: Task[]; nextCursor: string | null; counts: { all: number; open: number; done: number }; xCache: string | null };

async function pageFrom(res: Response): Promise<Page> {
  const r = await expectJson(res, 200);
  const body = r.body as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(["counts", "nextCursor", "tasks"]);
  const counts = body.counts as Page["counts"];
  expect(Object.keys(counts).sort()).toEqual(["all", "done", "open"]);
  expect(counts.all).toBe(counts.open + counts.done);
  expect(Array.isArray(body.tasks)).toBe(true);
  const tasks = (body.tasks as unknown[]).map(expectTaskShape);
  const nextCursor = body.nextCursor;
  if (nextCursor !== null) {
    expect(nextCursor).toBeTypeOf("string");
    expect(nextCursor).not.toBe("");
  }
  const xCache = r.headers.get("x-cache");
  expect(xCache).toMatch(/^(HIT|MISS)$/);
  return { tasks, nextCursor: nextCursor as string | null, counts, xCache };
}

/** Text that must never reach a client: stack frames, file positions, driver and runtime messages. */
const LEAKS: RegExp[] = [
  /(^|\n)\s*at\s/, // a stack frame line
  /\bat\s+\S+\s+\(/, // "at fn (file..."
  /\.ts:/,
  /\.m?js:\d/,
  /node_modules/,
  /node:internal/,
  /\bE[A-Z]{4,}\b/, // ECONNREFUSED, ETIMEDOUT, ...
  /127\.0\.0\.1|localhost|postgres:\/\//i,
  /PostgresError|SQLSTATE|violates|relation "|syntax error|duplicate key/i,
  /Unexpected token|Unexpected end|at position \d|JSON\.parse/i,
  /ZodError|TypeError|ReferenceError|RangeError/,
  /\[object Object\]|undefined/,
];

type ApiError = ErrorBody["error"];

/** The error shape `{ error: { code, message, issues? } }` with `status` and `code`, and no leaks. */
async function errorFrom(res: Response, status: number, code: string): Promise<ApiError> {
  const r = await expectJson(res, status);
  const body = r.body as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(["error"]);
  const error = body.error as Record<string, unknown>;
  const keys = Object.keys(error).sort();
  expect(keys.includes("issues") ? keys : [...keys, "issues"].sort()).toEqual(["code", "issues", "message"]);
  expect(error.code).toBe(code);
  expect(error.message).toBeTypeOf("string");
  const message = error.message as string;
  expect(message.trim()).not.toBe("");
  for (const leak of LEAKS) expect(message, `message ${JSON.stringify(message)} leaks ${leak}`).not.toMatch(leak);
  if ("issues" in error) {
    expect(Array.isArray(error.issues)).toBe(true);
    for (const issue of error.issues as unknown[]) {
      expect(Object.keys(issue as object).sort()).toEqual(["message", "path"]);
      const { path, message: issueMessage } = issue as { path: unknown; message: unknown };
      expect(path).toBeTypeOf("string");
      expect(issueMessage).toBeTypeOf("string");
      for (const leak of LEAKS) expect(issueMessage as string).not.toMatch(leak);
    }
  }
  return error as ApiError;
}

/** True when some issue names `field` in its path or message. */
function namesField(error: ApiError, field: string): boolean {
  return (error.issues ?? []).some((i) => i.path.split(/[.,]/).includes(field) || i.message.includes(field));
}

function etag(task: Pick<Task, "version">): string {
  return `"v${task.version}"`;
}

// ---- bodies ----------------------------------------------------------------------------------

const MAX_BODY_BYTES = 16 * 1024;

/** A valid create body of exactly `bytes` bytes (JSON padded with trailing spaces). */
function paddedCreateBody(bytes: number, title: string): string {
  const json = JSON.stringify({ title });
  return json + " ".repeat(bytes - byteLength(json));
}

/** `bytes` bytes as 1 KiB chunks. */
function chunksOf(text: string, size = 1024): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

// ---- tables ----------------------------------------------------------------------------------

const BAD_IDS = [
  "1abc",
  "0",
  "-1",
  "1.5",
  "99999999999999999999",
  "2147483648",
  "01",
  " 1",
  "1 ",
  "1e3",
  "0x10",
  "+1",
  "abc",
  "",
  "\uff11", // fullwidth digit one
];

const BAD_TITLES: Array<[string, unknown]> = [
  ["empty", ""],
  ["only spaces", "   "],
  ["only whitespace and line breaks", " \t\n\r "],
  ["501 characters", "a".repeat(501)],
  ["501 emoji (code points)", "\u{1F600}".repeat(501)],
  ["containing NUL", "a\u0000b"],
  ["containing BEL \\u0007", "a\u0007b"],
  ["containing ESC \\u001b", "a\u001bb"],
  ["containing DEL \\u007f", "a\u007fb"],
  ["containing NEL \\u0085", "a\u0085b"],
  ["containing a newline", "a\nb"],
  ["containing a tab", "a\tb"],
  ["containing a carriage return", "a\rb"],
  ["a lone control character", "\u0007"],
  ["a number", 42],
  ["a boolean", true],
  ["null", null],
  ["an array", ["a"]],
  ["an object", { text: "a" }],
];

const BAD_DONE: Array<[string, unknown]> = [
  ["the string \"true\"", "true"],
  ["the number 1", 1],
  ["the number 0", 0],
  ["null", null],
  ["an object", {}],
];

const NOT_OBJECT_BODIES = ["[]", '[{"title":"x"}]', "42", "null", '"a title"', "true"];

const MALFORMED_JSON = ['{"title":', "{title: \"x\"}", "{'title':'x'}", '{"title":"x"}}', "", "nope", '{"title":"x",}'];

const NON_JSON_CONTENT_TYPES: Array<[string, HeaderMap]> = [
  ["text/plain", { "content-type": "text/plain" }],
  ["no content type", {}],
  ["application/x-www-form-urlencoded", { "content-type": "application/x-www-form-urlencoded" }],
  ["multipart/form-data", { "content-type": "multipart/form-data; boundary=x" }],
];

/** If-Match values that are neither `*` nor an ETag this API returns. */
const GARBAGE_IF_MATCH = ["garbage", "v1", '"1"', '"v0"', '"v-1"', '"v1.0"', '"v99999999999"', '"v2147483648"', '"v9999999999"', '""', 'W/"v1"'];

// ---- requests to every route ----------------------------------------------------------------

  /** One request per route, each well-formed. */
function everyRoute(client: Api): Array<[string, () => Promise<Response>]> {
    return [
      ["GET /api/tasks", () => client.list()],
      ["GET /api/tasks?limit=3&cursor=10", () => client.list("?limit=3&cursor=10")],
      ["GET /api/tasks/1", () => client.get(1)],
      ["POST /api/tasks", () => client.create({ title: "while down" })],
      ["PATCH /api/tasks/1", () => client.patch(1, { done: true })],
      ["PATCH /api/tasks/1 with If-Match", () => client.patch(1, { done: true }, { "if-match": '"v1"' })],
      ["DELETE /api/tasks/1", () => client.remove(1)],
    ];
  }

  /** Requests each route refuses for their input alone, with the status and code it answers. */
function invalidRequests(client: Api): Array<[string, number, string, () => Promise<Response>]> {
    const json = { "content-type": "application/json" };
    return [
      ["GET /api/tasks?limit=0", 400, "validation_failed", () => client.list("?limit=0")],
      ["GET /api/tasks?bogus=1", 400, "validation_failed", () => client.list("?bogus=1")],
      ["GET /api/tasks/abc", 400, "invalid_id", () => client.get("abc")],
      ["POST empty title", 400, "validation_failed", () => client.create({ title: "  " })],
      ["POST unknown field", 400, "validation_failed", () => client.create({ title: "x", extra: true })],
      ["POST malformed JSON", 400, "invalid_json", () => client.createRaw("{", json)],
      ["POST text/plain", 415, "unsupported_media_type", () => client.createRaw('{"title":"x"}', { "content-type": "text/plain" })],
      ["POST too large", 413, "payload_too_large", () => client.createRaw(streamOf(chunksOf(paddedCreateBody(MAX_BODY_BYTES + 1, "x"))), json)],
      ["PATCH /api/tasks/1 {}", 400, "validation_failed", () => client.patch(1, {})],
      ["PATCH /api/tasks/0", 400, "invalid_id", () => client.patch("0", { done: true })],
      ["DELETE /api/tasks/-1", 400, "invalid_id", () => client.remove("-1")],
    ];
  }

// ---- the suite -------------------------------------------------------------------------------

/** The cache drivers whose keys live in the shared test Redis (the REST bridge writes there too). */
function usesSharedRedis(driver: CacheDriverChoice): boolean {
  return driver !== "memory" && driver !== "none";
}

type Via = "cookie" | "bearer";

/**
 * Each way of signing requests, on every backend. The full table runs once per stack, with the
 * credential that stack always ran it with (a session cookie on the zero-setup stack, a bearer
 * key elsewhere); with the other credential, the CRUD, conditional-request and ownership tests
 * run. The whole table for both credentials took the file from about one minute to two and a half.
 */
function credentialsFor(backend: TestBackend) {
  return (["cookie", "bearer"] as const).map((via: Via) => {
    const full = via === (backend.cacheDriver === "memory" ? "cookie" : "bearer");
    return { via, full, scope: full ? "the full table" : "CRUD, conditional requests and ownership" };
  });
}

describe.each(BACKENDS)("REST API on $name", (backend) => {
  let env: TestEnv;
  let store: TaskStore;
  let auth: Auth;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    store = await env.openStore();
    auth = testAuth(store);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  describe.each(credentialsFor(backend))("with a $via credential: $scope", ({ via, full }) => {
    /** The signed-up person every request here is made by (one per credential). */
    let owner: string;
    /** How they prove it: a session cookie or a bearer API key. */
    let credential: Record<string, string>;
    const deps = { store: async () => store, auth: async () => auth, limiter: async () => rateLimiterFor(store, true) };
    /** Requests through the real authentication, as the routes do, carrying `headers()`. */
    const signedWith =
      (headers: () => Record<string, string>): TasksFor =>
      (req) => {
        for (const [name, value] of Object.entries(headers())) req.headers.set(name, value);
        return tasksForWith(deps)(req);
      };
    const api = apiFor(signedWith(() => credential));
    /** The same routes, with no credential at all. */
    const anonymous = apiFor(signedWith(() => ({})));

    /** The headers that sign a request as the person whose session `cookie` is, the way `via` says. */
    async function credentialOf(cookie: string): Promise<Record<string, string>> {
      if (via === "cookie") return { cookie };
      const { key } = (await (await createKey(apiRequest("POST", "/api/keys", { cookie }, { name: "api tests" }), deps)).json()) as { key: string };
      return { authorization: `Bearer ${key}` };
    }

    /** Tests only the full table runs (see credentialsFor). */
    function describeFull(name: string, fn: () => void) {
      if (full) describe(name, fn);
    }

    beforeAll(async () => {
      const { cookie } = await signUp(auth);
      credential = await credentialOf(cookie);
      const principal = await authenticate(apiRequest("GET", "/api/tasks", { cookie }), { store, auth: async () => auth });
      owner = principal!.userId;
    });

    async function make(title = "a task", done?: boolean): Promise<Task> {
      return taskFrom(await api.create(done === undefined ? { title } : { title, done }), 201);
    }

    /** Postgres, read directly: the truth. */
    function dbRows(): Promise<Task[]> {
      return queries.listTasks(store.database.db, { userId: owner, limit: 1_000_000 });
    }

    /** What changed-nothing is measured against: Postgres, and the first page as the API serves it. */
    async function snapshot(watch: number[]) {
      const rows = await dbRows();
      const page = await pageFrom(await api.list("?limit=200"));
      const watched = await Promise.all(watch.map(async (id) => (await read(await api.get(id))).body));
      return { rows, served: page.tasks, watched };
    }

    type Refuse = (send: () => Promise<Response>, status: number, code: string) => Promise<ApiError>;

    /**
     * For a run of requests that must each be refused: asserts each one's error, and that after each
     * one nothing changed. Consecutive refusals share snapshots (the one after a refusal is the one
     * before the next), so only refusals may be sent through one run.
     */
    function refusals(watch: number[] = []): Refuse {
      let last: Awaited<ReturnType<typeof snapshot>> | undefined;
      return async (send, status, code) => {
        const before = last ?? (await snapshot(watch));
        const error = await errorFrom(await send(), status, code);
        last = await snapshot(watch);
        expect(last, "a refused request changed something").toEqual(before);
        return error;
      };
    }

    /** Sends one request that must be refused, asserts the error, and that nothing changed. */
    function expectRefused(send: () => Promise<Response>, status: number, code: string, watch: number[] = []): Promise<ApiError> {
      return refusals(watch)(send, status, code);
    }

    /** A store over the same database with a cache nobody has used yet. */
    async function withColdCache(fn: (cold: Api) => Promise<void>): Promise<void> {
      const prefix = uniqueName("wtt_cold");
      const cold = new TaskStore({ database: { ...store.database, close: async () => {} }, cache: makeCache(backend.cacheDriver, prefix) });
      try {
        await fn(apiFor(async () => cold.forUser(owner)));
      } finally {
        await cold.close();
        if (usesSharedRedis(backend.cacheDriver)) await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
      }
    }

    // ---- POST /api/tasks --------------------------------------------------------------------

    describe("POST /api/tasks", () => {
      test("creates a task: 201, Location /api/tasks/{id}, JSON Task at version 1 with done false", async () => {
        const res = await api.create({ title: "buy milk" });
        const task = await taskFrom(res, 201);
        expect(res.headers.get("location")).toBe(`/api/tasks/${task.id}`);
        expect(task).toMatchObject({ title: "buy milk", done: false, version: 1 });
        expect((await dbRows()).find((t) => t.id === task.id)).toEqual(task);
        expect(await taskFrom(await api.get(task.id))).toEqual(task);
      });

      test("honours done: true", async () => {
        const task = await make("already done", true);
        expect(task.done).toBe(true);
        expect((await taskFrom(await api.get(task.id))).done).toBe(true);
      });

      test("trims the title: '  hello  ' is stored as 'hello'", async () => {
        const task = await make("  hello  ");
        expect(task.title).toBe("hello");
        expect((await dbRows()).find((t) => t.id === task.id)?.title).toBe("hello");
        expect((await taskFrom(await api.get(task.id))).title).toBe("hello");
      });

      test.each([
        ["500 ASCII characters", "a".repeat(500), "a".repeat(500)],
        ["500 emoji (500 code points)", "\u{1F600}".repeat(500), "\u{1F600}".repeat(500)],
        ["500 characters inside surrounding spaces", ` ${"b".repeat(500)} `, "b".repeat(500)],
      ])("accepts a title of %s", async (_label, title, stored) => {
        const task = await make(title);
        expect(task.title).toBe(stored);
        expect((await taskFrom(await api.get(task.id))).title).toBe(stored);
      });

      test("a created task is first in GET /api/tasks", async () => {
        await pageFrom(await api.list());
        const task = await make("newest");
        const page = await pageFrom(await api.list());
        expect(page.tasks[0]).toEqual(task);
        expect(page.tasks.filter((t) => t.id === task.id)).toHaveLength(1);
      });

      test.each(["application/json; charset=utf-8", "Application/JSON"])("accepts Content-Type %s", async (contentType) => {
        const task = await taskFrom(await api.createRaw(JSON.stringify({ title: "typed" }), { "content-type": contentType }), 201);
        expect(task.title).toBe("typed");
      });

      test("missing title is 400 validation_failed naming title, and nothing changes", async () => {
        for (const body of [{}, { done: true }]) {
          const error = await expectRefused(() => api.create(body), 400, "validation_failed");
          expect(namesField(error, "title"), JSON.stringify(error)).toBe(true);
        }
      });
    });

    // ---- GET /api/tasks/{id} ----------------------------------------------------------------

    describe("GET /api/tasks/{id}", () => {
      test('is 200 with the Task, ETag "v<version>" and an X-Cache header', async () => {
        const created = await make("read me");
        const res = await api.get(created.id);
        expect(await taskFrom(res)).toEqual(created);
        expect(res.headers.get("etag")).toBe('"v1"');
        expect(res.headers.get("x-cache")).toMatch(/^(HIT|MISS)$/);
      });

      test("If-None-Match with the current ETag is 304 with an empty body", async () => {
        const created = await make("conditional");
        const res = await api.get(created.id, { "if-none-match": etag(created) });
        const r = await read(res);
        expect(r.status).toBe(304);
        expect(r.text).toBe("");
        expect(r.headers.get("etag")).toBe(etag(created));
        expect(r.headers.get("x-cache")).toMatch(/^(HIT|MISS)$/);
      });

      test("If-None-Match with an old ETag is 200 with the current task", async () => {
        const created = await make("changes");
        const updated = await taskFrom(await api.patch(created.id, { done: true }));
        const res = await api.get(created.id, { "if-none-match": etag(created) });
        expect(await taskFrom(res)).toEqual(updated);
        expect(res.headers.get("etag")).toBe('"v2"');
      });

      test("an unknown id (2147483647) is 404 not_found", async () => {
        await expectRefused(() => api.get("2147483647"), 404, "not_found");
      });

      test("GET /api/tasks/{id} is a MISS on a cold cache, then a HIT with the same task and ETag", async () => {
        const created = await make("cold read");
        await withColdCache(async (cold) => {
          const first = await cold.get(created.id);
          expect(first.headers.get("x-cache")).toBe("MISS");
          expect(await taskFrom(first)).toEqual(created);
          const second = await cold.get(created.id);
          expect(second.headers.get("x-cache")).toBe("HIT");
          expect(await taskFrom(second)).toEqual(created);
          expect(second.headers.get("etag")).toBe(first.headers.get("etag"));
        });
      });

      test("a task is a HIT right after POST (written through)", async () => {
        const created = await make("written through");
        const res = await api.get(created.id);
        expect(res.headers.get("x-cache")).toBe("HIT");
        expect(await taskFrom(res)).toEqual(created);
      });
    });

    // ---- PATCH /api/tasks/{id} --------------------------------------------------------------

    describe("PATCH /api/tasks/{id}", () => {
      test("changing the title is 200 with version+1, a new ETag, done and createdAt unchanged", async () => {
        const created = await make("old title", true);
        const res = await api.patch(created.id, { title: "new title" });
        const updated = await taskFrom(res);
        expect(updated).toMatchObject({ id: created.id, title: "new title", done: true, version: 2, createdAt: created.createdAt });
        expect(Date.parse(updated.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.updatedAt));
        expect(res.headers.get("etag")).toBe('"v2"');
        expect((await dbRows()).find((t) => t.id === created.id)).toEqual(updated);
      });

      test("changing done only keeps the title; changing both changes both", async () => {
        const created = await make("toggle me");
        const v2 = await taskFrom(await api.patch(created.id, { done: true }));
        expect(v2).toMatchObject({ title: "toggle me", done: true, version: 2 });
        const v3 = await taskFrom(await api.patch(created.id, { title: "  both  ", done: false }));
        expect(v3).toMatchObject({ title: "both", done: false, version: 3 });
      });

      test("GET and the list serve the patched task at its new version", async () => {
        const created = await make("before patch");
        await pageFrom(await api.list("?limit=200"));
        const updated = await taskFrom(await api.patch(created.id, { title: "after patch" }));
        const res = await api.get(created.id);
        expect(await taskFrom(res)).toEqual(updated);
        expect(res.headers.get("etag")).toBe(etag(updated));
        expect((await pageFrom(await api.list("?limit=200"))).tasks.find((t) => t.id === created.id)).toEqual(updated);
      });

      test("If-Match with the current ETag is 200", async () => {
        const created = await make("guarded");
        const res = await api.patch(created.id, { done: true }, { "if-match": etag(created) });
        expect(await taskFrom(res)).toMatchObject({ done: true, version: 2 });
        expect(res.headers.get("etag")).toBe('"v2"');
      });

      test("If-Match * is 200", async () => {
        const created = await make("any version");
        await taskFrom(await api.patch(created.id, { done: true }));
        expect(await taskFrom(await api.patch(created.id, { title: "star" }, { "if-match": "*" }))).toMatchObject({ title: "star", version: 3 });
      });

      test("PATCH with a stale If-Match is 412 precondition_failed and changes nothing", async () => {
        const created = await make("lost update");
        const v2 = await taskFrom(await api.patch(created.id, { done: true }));
        await expectRefused(() => api.patch(created.id, { title: "clobber" }, { "if-match": etag(created) }), 412, "precondition_failed", [created.id]);
        expect(await taskFrom(await api.get(created.id))).toEqual(v2);
      });

      test.each(GARBAGE_IF_MATCH)("PATCH with a garbage If-Match %s is 412 and changes nothing", async (ifMatch) => {
        const created = await make("garbage if-match");
        await expectRefused(() => api.patch(created.id, { title: "clobber" }, { "if-match": ifMatch }), 412, "precondition_failed", [created.id]);
        expect(await taskFrom(await api.get(created.id))).toEqual(created);
      });

      test("an empty object is 400 validation_failed and changes nothing", async () => {
        const created = await make("empty patch");
        await expectRefused(() => api.patch(created.id, {}), 400, "validation_failed", [created.id]);
      });

      test.each(["application/json; charset=utf-8", "Application/JSON"])("accepts Content-Type %s", async (contentType) => {
        const created = await make("typed patch");
        const updated = await taskFrom(await api.patchRaw(created.id, JSON.stringify({ done: true }), { "content-type": contentType }));
        expect(updated).toMatchObject({ done: true, version: 2 });
      });

      test("an unknown id (2147483647) is 404 not_found, with or without If-Match", async () => {
        const refused = refusals();
        await refused(() => api.patch("2147483647", { done: true }), 404, "not_found");
        await refused(() => api.patch("2147483647", { done: true }, { "if-match": '"v1"' }), 404, "not_found");
      });
    });

    // ---- DELETE /api/tasks/{id} -------------------------------------------------------------

    describe("DELETE /api/tasks/{id}", () => {
      test("is 204 with an empty body; then GET is 404, the list omits it and a second DELETE is 404", async () => {
        const keep = await make("keep");
        const doomed = await make("doomed");
        await pageFrom(await api.list("?limit=200"));
        const r = await read(await api.remove(doomed.id));
        expect(r.status).toBe(204);
        expect(r.text).toBe("");
        expect((await dbRows()).map((t) => t.id)).not.toContain(doomed.id);
        await errorFrom(await api.get(doomed.id), 404, "not_found");
        const ids = (await pageFrom(await api.list("?limit=200"))).tasks.map((t) => t.id);
        expect(ids).not.toContain(doomed.id);
        expect(ids).toContain(keep.id);
        const refused = refusals([keep.id]);
        await refused(() => api.remove(doomed.id), 404, "not_found");
        await refused(() => api.patch(doomed.id, { done: true }), 404, "not_found");
      });

      test("DELETE with a stale If-Match is 412 and the task still exists", async () => {
        const created = await make("protected");
        const v2 = await taskFrom(await api.patch(created.id, { done: true }));
        await expectRefused(() => api.remove(created.id, { "if-match": etag(created) }), 412, "precondition_failed", [created.id]);
        expect(await taskFrom(await api.get(created.id))).toEqual(v2);
        expect((await pageFrom(await api.list("?limit=200"))).tasks.map((t) => t.id)).toContain(created.id);
      });

      test.each(GARBAGE_IF_MATCH)("DELETE with a garbage If-Match %s is 412 and the task still exists", async (ifMatch) => {
        const created = await make("garbage delete");
        await expectRefused(() => api.remove(created.id, { "if-match": ifMatch }), 412, "precondition_failed", [created.id]);
        expect(await taskFrom(await api.get(created.id))).toEqual(created);
      });

      test("DELETE with the current If-Match, or *, is 204", async () => {
        const a = await make("delete current");
        const b = await make("delete star");
        expect((await read(await api.remove(a.id, { "if-match": etag(a) }))).status).toBe(204);
        expect((await read(await api.remove(b.id, { "if-match": "*" }))).status).toBe(204);
        await errorFrom(await api.get(a.id), 404, "not_found");
        await errorFrom(await api.get(b.id), 404, "not_found");
      });

      test("an unknown id (2147483647) is 404 not_found", async () => {
        await expectRefused(() => api.remove("2147483647"), 404, "not_found");
      });
    });

    // ---- another person's tasks -----------------------------------------------------------

    describe("POST /api/tasks/{id}/restore", () => {
      test("undo of a delete gives the same task back at the next version, in Postgres, the cache and the list", async () => {
        const task = await make("deleted, then restored");
        expect((await api.remove(task.id)).status).toBe(204);
        await errorFrom(await api.get(task.id), 404, "not_found");
        const res = await api.restore(task.id);
        const restored = await taskFrom(res);
        // The delete took version 2 (its tombstone's); the restore is above it.
        expect(restored).toMatchObject({ id: task.id, title: task.title, done: task.done, version: 3 });
        expect(res.headers.get("etag")).toBe(`"v3"`);
        expect((await dbRows()).find((t) => t.id === task.id)).toEqual(restored);
        const read = await api.get(task.id);
        expect(await taskFrom(read)).toEqual(restored);
        expect(read.headers.get("x-cache")).toBe("HIT");
        const page = await pageFrom(await api.list("?limit=200"));
        expect(page.tasks.map((t) => t.id)).toContain(task.id);
        // In its own place by id (newest first), not at the top.
        const ids = page.tasks.map((t) => t.id);
        expect(ids).toEqual([...ids].sort((a, b) => b - a));
        await withColdCache(async (cold) => expect(await taskFrom(await cold.get(task.id))).toEqual(restored));
      });

      test("a task that is not deleted is a 409; an id never deleted, or purged, is a 404; both change nothing", async () => {
        const task = await make("still here");
        await expectRefused(() => api.restore(task.id), 409, "conflict", [task.id]);
        await expectRefused(() => api.restore(2_000_000_000), 404, "not_found", [task.id]);
        const gone = await make("purged after 30 days");
        expect((await api.remove(gone.id)).status).toBe(204);
        // 31 days pass for this row; the purge removes it for good.
        await store.database.db.update(tasksTable).set({ deletedAt: new Date(Date.now() - 31 * 24 * 3600 * 1000) }).where(eq(tasksTable.id, gone.id));
        expect(await queries.purgeDeletedTasks(store.database.db)).toBeGreaterThanOrEqual(1);
        await expectRefused(() => api.restore(gone.id), 404, "not_found", [task.id]);
      });

      test("a restore retried with its Idempotency-Key answers the same task once; a delete after a restore deletes again", async () => {
        const task = await make("restored once");
        await api.remove(task.id);
        const key = `restore-${randomUUID()}`;
        const first = await taskFrom(await api.restore(task.id, { "idempotency-key": key }));
        const again = await api.restore(task.id, { "idempotency-key": key });
        expect(await taskFrom(again)).toEqual(first);
        expect(again.headers.get("idempotent-replayed")).toBe("true");
        expect((await api.remove(task.id)).status).toBe(204);
        await errorFrom(await api.get(task.id), 404, "not_found");
        expect((await taskFrom(await api.restore(task.id))).version).toBe(first.version + 2);
      });

      test("another person's deleted task can't be restored: 404, exactly as a missing one", async () => {
        const task = await make("mine, deleted");
        await api.remove(task.id);
        const { cookie } = await signUp(auth);
        const theirs = apiFor(signedWith(() => ({ cookie })));
        const error = await errorFrom(await theirs.restore(task.id), 404, "not_found");
        expect(error).toEqual(await errorFrom(await theirs.restore(2_000_000_001), 404, "not_found").then((e) => ({ ...e, message: e.message.replace("2000000001", String(task.id)) })));
        await errorFrom(await api.get(task.id), 404, "not_found");
      });
    });

    describe("Idempotency-Key", () => {
      test("a retried create answers the first attempt's 201 and body, marked as a replay, and writes one row", async () => {
        const key = `create-${randomUUID()}`;
        const first = await api.create({ title: "once only" }, { "idempotency-key": key });
        const task = await taskFrom(first, 201);
        expect(first.headers.get("idempotent-replayed")).toBeNull();
        const again = await api.create({ title: "once only" }, { "idempotency-key": key });
        expect(await taskFrom(again, 201)).toEqual(task);
        expect(again.headers.get("idempotent-replayed")).toBe("true");
        expect(again.headers.get("location")).toBe(`/api/tasks/${task.id}`);
        expect((await dbRows()).filter((t) => t.title === "once only")).toHaveLength(1);
      });

      test("concurrent attempts with one key make one task, and every attempt answers it", async () => {
        const key = `race-${randomUUID()}`;
        const answers = await Promise.all(Array.from({ length: 6 }, () => api.create({ title: "raced key" }, { "idempotency-key": key })));
        const tasks = await Promise.all(answers.map((res) => taskFrom(res, 201)));
        expect(new Set(tasks.map((t) => t.id)).size).toBe(1);
        expect((await dbRows()).filter((t) => t.title === "raced key")).toHaveLength(1);
      });

      test("the same key with a different request is a 422 that writes nothing", async () => {
        const key = `mismatch-${randomUUID()}`;
        const task = await taskFrom(await api.create({ title: "first use" }, { "idempotency-key": key }), 201);
        const error = await expectRefused(() => api.create({ title: "second use" }, { "idempotency-key": key }), 422, "idempotency_key_reused", [task.id]);
        expect(error.message).toMatch(/different request/);
        // A key names one request per person: on a PATCH it is another request too.
        await expectRefused(() => api.patch(task.id, { done: true }, { "idempotency-key": key }), 422, "idempotency_key_reused", [task.id]);
      });

      test("a retried PATCH replays the first answer, even after later changes, and bumps the version once", async () => {
        const task = await make("patched once");
        const key = `patch-${randomUUID()}`;
        const first = await taskFrom(await api.patch(task.id, { done: true }, { "idempotency-key": key }));
        expect(first.version).toBe(2);
        const later = await taskFrom(await api.patch(task.id, { title: "changed since" }));
        const replay = await api.patch(task.id, { done: true }, { "idempotency-key": key });
        expect(await taskFrom(replay)).toEqual(first);
        expect(replay.headers.get("etag")).toBe(`"v2"`);
        // The replay did not write: Postgres and the cache still hold the later change.
        expect((await dbRows()).find((t) => t.id === task.id)).toEqual(later);
        expect(await taskFrom(await api.get(task.id))).toEqual(later);
      });

      test("a retried DELETE answers 204 again; a failed attempt stores nothing, so its retry is judged afresh", async () => {
        const task = await make("deleted once");
        const key = `delete-${randomUUID()}`;
        expect((await api.remove(task.id, { "idempotency-key": key })).status).toBe(204);
        const replay = await api.remove(task.id, { "idempotency-key": key });
        expect(replay.status).toBe(204);
        expect(replay.headers.get("idempotent-replayed")).toBe("true");
        await errorFrom(await api.get(task.id), 404, "not_found");
        const missing = `missing-${randomUUID()}`;
        await errorFrom(await api.remove(task.id, { "idempotency-key": missing }), 404, "not_found");
        await errorFrom(await api.remove(task.id, { "idempotency-key": missing }), 404, "not_found");
      });

      test("keys are per person: another person's same key is their own request", async () => {
        const key = `shared-${randomUUID()}`;
        const mine = await taskFrom(await api.create({ title: "mine" }, { "idempotency-key": key }), 201);
        const { cookie } = await signUp(auth);
        const theirs = apiFor(signedWith(() => ({ cookie })));
        const other = await taskFrom(await theirs.create({ title: "theirs" }, { "idempotency-key": key }), 201);
        expect(other.id).not.toBe(mine.id);
        expect(other.title).toBe("theirs");
      });

      test("a key that is empty, too long or not printable ASCII is a 400 that writes nothing", async () => {
        const refuse = refusals();
        for (const bad of ["", " ", "x".repeat(256), "tab\there", "caf\u00e9"]) {
          const error = await refuse(() => api.create({ title: "never" }, { "idempotency-key": bad }), 400, "validation_failed");
          expect(error.message).toMatch(/Idempotency-Key/);
        }
      });
    });

    describe("another person's tasks", () => {
      let theirs: Task;
      let theirApi: Api;
      let them: string;
      beforeAll(async () => {
        const { cookie } = await signUp(auth);
        const theirCredential = await credentialOf(cookie);
        theirApi = apiFor(signedWith(() => theirCredential));
        them = (await authenticate(apiRequest("GET", "/api/tasks", { cookie }), { store, auth: async () => auth }))!.userId;
        theirs = await taskFrom(await theirApi.create({ title: "someone else's task" }), 201);
      });

      /** Their task, in Postgres and as they are served it, is as they made it. */
      async function expectTheirsUnchanged() {
        expect(await queries.getTaskById(store.database.db, { userId: them, id: theirs.id })).toEqual(theirs);
        expect(await taskFrom(await theirApi.get(theirs.id))).toEqual(theirs);
        expect((await pageFrom(await theirApi.list("?limit=200"))).tasks.map((t) => t.id)).toContain(theirs.id);
      }

      test("GET, PATCH and DELETE of their task id are 404 with a missing id's body, with or without conditions, and change nothing", async () => {
        const absent = 2147483647;
        const missing = (await expectJson(await api.get(absent), 404)).body as { error: { message: string } };
        const expected = { error: { ...missing.error, message: missing.error.message.replace(String(absent), String(theirs.id)) } };
        expect(expected.error.message).toContain(String(theirs.id));
        const refused = refusals();
        for (const [label, send] of [
          ["GET", () => api.get(theirs.id)],
          ["GET If-None-Match", () => api.get(theirs.id, { "if-none-match": etag(theirs) })],
          ["PATCH", () => api.patch(theirs.id, { title: "taken over", done: true })],
          ["PATCH If-Match", () => api.patch(theirs.id, { done: true }, { "if-match": etag(theirs) })],
          ["PATCH If-Match *", () => api.patch(theirs.id, { done: true }, { "if-match": "*" })],
          ["DELETE If-Match", () => api.remove(theirs.id, { "if-match": etag(theirs) })],
          ["DELETE If-Match *", () => api.remove(theirs.id, { "if-match": "*" })],
          ["DELETE", () => api.remove(theirs.id)],
        ] as const) {
          let body: unknown;
          await refused(async () => {
            const res = await send();
            body = (await read(res.clone())).body;
            return res;
          }, 404, "not_found").catch((err: unknown) => {
            throw new Error(`${label}: ${String(err)}`);
          });
          expect(body, label).toEqual(expected);
          await expectTheirsUnchanged();
        }
      });

      test("their task is not in my list, and mine is not in theirs", async () => {
        const mine = await make("only mine");
        const myIds = (await pageFrom(await api.list("?limit=200"))).tasks.map((t) => t.id);
        expect(myIds).toContain(mine.id);
        expect(myIds).not.toContain(theirs.id);
        const theirIds = (await pageFrom(await theirApi.list("?limit=200"))).tasks.map((t) => t.id);
        expect(theirIds).toEqual([theirs.id]);
      });
    });

    // ---- without a credential ---------------------------------------------------------------

    describeFull("without a credential", () => {
      test("every route is 401 unauthorized, and nothing changes", async () => {
        const victim = await make("not for strangers");
        const refused = refusals([victim.id]);
        for (const [label, send] of [...everyRoute(anonymous), ["PATCH my task", () => anonymous.patch(victim.id, { done: true })] as const, ["DELETE my task", () => anonymous.remove(victim.id)] as const]) {
          const error = await refused(send, 401, "unauthorized").catch((err: unknown) => {
            throw new Error(`${label}: ${String(err)}`);
          });
          expect(error.issues).toBeUndefined();
        }
      });

      test("invalid input is 401 without a credential (it is not parsed) and 400/413/415 with one; nothing changes", async () => {
        const refused = refusals();
        const withCredential = invalidRequests(api);
        for (const [i, [label, , , send]] of invalidRequests(anonymous).entries()) {
          await refused(send, 401, "unauthorized").catch((err: unknown) => {
            throw new Error(`${label} without a credential: ${String(err)}`);
          });
          const [, status, code, sendSigned] = withCredential[i]!;
          await refused(sendSigned, status, code).catch((err: unknown) => {
            throw new Error(`${label} with a credential: ${String(err)}`);
          });
        }
      });
    });

    // ---- ids --------------------------------------------------------------------------------

    describeFull("task ids", () => {
      let victim: Task;
      beforeAll(async () => {
        victim = await make("id victim");
      });

      test.each(BAD_IDS)("id %j is 400 invalid_id for GET, PATCH and DELETE, and nothing changes", async (id) => {
        const refused = refusals([victim.id]);
        await refused(() => api.get(id), 400, "invalid_id");
        await refused(() => api.patch(id, { done: true }), 400, "invalid_id");
        await refused(() => api.remove(id), 400, "invalid_id");
      });

      test("2147483647 (valid, absent) is 404 not_found for GET, PATCH and DELETE", async () => {
        const refused = refusals([victim.id]);
        await refused(() => api.get(2147483647), 404, "not_found");
        await refused(() => api.patch(2147483647, { title: "x" }), 404, "not_found");
        await refused(() => api.remove(2147483647), 404, "not_found");
      });
    });

    // ---- request bodies ---------------------------------------------------------------------

    describeFull("request bodies", () => {
      let target: Task;
      beforeAll(async () => {
        target = await make("body target");
      });

      test.each(BAD_TITLES)("a title that is %s is 400 validation_failed naming title on POST and PATCH; nothing changes", async (_label, title) => {
        const refused = refusals([target.id]);
        const onCreate = await refused(() => api.create({ title }), 400, "validation_failed");
        expect(namesField(onCreate, "title"), JSON.stringify(onCreate)).toBe(true);
        const onPatch = await refused(() => api.patch(target.id, { title }), 400, "validation_failed");
        expect(namesField(onPatch, "title"), JSON.stringify(onPatch)).toBe(true);
      });

      test.each(BAD_DONE)("done that is %s is 400 validation_failed naming done on POST and PATCH; nothing changes", async (_label, done) => {
        const refused = refusals([target.id]);
        const onCreate = await refused(() => api.create({ title: "ok", done }), 400, "validation_failed");
        expect(namesField(onCreate, "done"), JSON.stringify(onCreate)).toBe(true);
        const onPatch = await refused(() => api.patch(target.id, { done }), 400, "validation_failed");
        expect(namesField(onPatch, "done"), JSON.stringify(onPatch)).toBe(true);
      });

      test.each([
        ["POST", "extra", { title: "ok", extra: 1 }],
        ["POST", "id", { title: "ok", id: 5 }],
        ["POST", "version", { title: "ok", version: 9 }],
        ["PATCH", "extra", { done: true, extra: 1 }],
        ["PATCH", "version", { title: "ok", version: 9 }],
        ["PATCH", "createdAt", { createdAt: "2020-01-01T00:00:00.000Z" }],
      ] as const)("%s with an unknown field %s is 400 validation_failed naming it; nothing changes", async (method, field, body) => {
        const send = method === "POST" ? () => api.create(body) : () => api.patch(target.id, body);
        const error = await expectRefused(send, 400, "validation_failed", [target.id]);
        expect(namesField(error, field), JSON.stringify(error)).toBe(true);
      });

      test("an own __proto__ field is an unknown field too (400, nothing changes)", async () => {
        const json = { "content-type": "application/json" };
        const raw = '{"title":"proto","__proto__":{"done":true}}';
        const refused = refusals([target.id]);
        await refused(() => api.createRaw(raw, json), 400, "validation_failed");
        await refused(() => api.patchRaw(target.id, '{"done":true,"__proto__":{"x":1}}', json), 400, "validation_failed");
      });

      test.each(NOT_OBJECT_BODIES)("a body that is not a JSON object (%s) is 400 validation_failed on POST and PATCH", async (raw) => {
        const json = { "content-type": "application/json" };
        const refused = refusals([target.id]);
        await refused(() => api.createRaw(raw, json), 400, "validation_failed");
        await refused(() => api.patchRaw(target.id, raw, json), 400, "validation_failed");
      });

      test.each(MALFORMED_JSON)("malformed JSON %j is 400 invalid_json on POST and PATCH", async (raw) => {
        const json = { "content-type": "application/json" };
        const refused = refusals([target.id]);
        await refused(() => api.createRaw(raw, json), 400, "invalid_json");
        await refused(() => api.patchRaw(target.id, raw, json), 400, "invalid_json");
      });

      test.each(NON_JSON_CONTENT_TYPES)("a %s body is 415 unsupported_media_type on POST and PATCH", async (_label, headers) => {
        const refused = refusals([target.id]);
        await refused(() => api.createRaw(JSON.stringify({ title: "typed wrong" }), headers), 415, "unsupported_media_type");
        await refused(() => api.patchRaw(target.id, JSON.stringify({ done: true }), headers), 415, "unsupported_media_type");
      });

      describe("size limit (16 KiB)", () => {
        const json = { "content-type": "application/json" };
        const tooBig = paddedCreateBody(MAX_BODY_BYTES + 1, "too big");
        const patchTooBig = JSON.stringify({ done: true }) + " ".repeat(MAX_BODY_BYTES + 1 - byteLength(JSON.stringify({ done: true })));

        test("a body one byte over 16 KiB with an honest Content-Length is 413 payload_too_large", async () => {
          expect(byteLength(tooBig)).toBe(MAX_BODY_BYTES + 1);
          const headers = { ...json, "content-length": String(MAX_BODY_BYTES + 1) };
          const refused = refusals([target.id]);
          await refused(() => api.createRaw(tooBig, headers), 413, "payload_too_large");
          await refused(() => api.patchRaw(target.id, patchTooBig, headers), 413, "payload_too_large");
        });

        test("a streamed body over 16 KiB without Content-Length is 413 payload_too_large", async () => {
          const refused = refusals([target.id]);
          await refused(() => api.createRaw(streamOf(chunksOf(tooBig)), json), 413, "payload_too_large");
          await refused(() => api.patchRaw(target.id, streamOf(chunksOf(patchTooBig)), json), 413, "payload_too_large");
          const huge = paddedCreateBody(256 * 1024, "huge");
          await refused(() => api.createRaw(streamOf(chunksOf(huge, 8192)), json), 413, "payload_too_large");
        });

        test("a streamed body over 16 KiB whose Content-Length understates it is 413", async () => {
          const headers = { ...json, "content-length": "20" };
          await expectRefused(() => api.createRaw(streamOf(chunksOf(tooBig)), headers), 413, "payload_too_large", [target.id]);
        });

        test("a body of exactly 16 KiB is accepted, with Content-Length or streamed", async () => {
          const exact = paddedCreateBody(MAX_BODY_BYTES, "exactly 16 KiB");
          expect(byteLength(exact)).toBe(MAX_BODY_BYTES);
          const a = await taskFrom(await api.createRaw(exact, { ...json, "content-length": String(MAX_BODY_BYTES) }), 201);
          const b = await taskFrom(await api.createRaw(streamOf(chunksOf(exact)), json), 201);
          expect(a.title).toBe("exactly 16 KiB");
          expect(b.title).toBe("exactly 16 KiB");
        });
      });
    });

    // ---- GET /api/tasks query parameters ----------------------------------------------------

    describeFull("GET /api/tasks query parameters", () => {
      test.each([
        ["foo", "?foo=1"],
        ["page", "?limit=5&page=2"],
        ["offset", "?offset=10"],
        ["Limit", "?Limit=5"],
      ])("an unknown parameter %s is 400 validation_failed naming it", async (name, query) => {
        const error = await expectRefused(() => api.list(query), 400, "validation_failed");
        expect(namesField(error, name), JSON.stringify(error)).toBe(true);
      });

      test.each(["0", "201", "abc", "1.5", "-1", "", "1e2", "050", " 5"])("limit=%j is 400 validation_failed", async (limit) => {
        await expectRefused(() => api.list(`?limit=${encodeURIComponent(limit)}`), 400, "validation_failed");
      });

      test.each(["abc", "0", "-5", "1.5", "", "140737488355328", "99999999999999999", "01"])("cursor=%j is 400 validation_failed", async (cursor) => {
        await expectRefused(() => api.list(`?cursor=${encodeURIComponent(cursor)}`), 400, "validation_failed");
      });

      test("limit=1 and limit=200 are accepted and serve Postgres's newest tasks", async () => {
        await make("limit check");
        const rows = await dbRows();
        const one = await pageFrom(await api.list("?limit=1"));
        expect(one.tasks).toEqual(rows.slice(0, 1));
        const max = await pageFrom(await api.list("?limit=200"));
        expect(max.tasks).toEqual(rows.slice(0, 200));
        expect(max.nextCursor === null).toBe(rows.length <= 200);
      });
    });

    // ---- GET /api/tasks ---------------------------------------------------------------------

    describeFull("GET /api/tasks", () => {
      /** Follows nextCursor from the first page to the end; `cursors[i]` is the cursor page i was asked with. */
      async function walk(client: Api, limit: number): Promise<{ pages: Task[][]; caches: string[]; cursors: Array<string | null> }> {
        const pages: Task[][] = [];
        const caches: string[] = [];
        const cursors: Array<string | null> = [];
        let cursor: string | null = null;
        do {
          cursors.push(cursor);
          const query: string = cursor === null ? `?limit=${limit}` : `?limit=${limit}&cursor=${encodeURIComponent(cursor)}`;
          const page = await pageFrom(await client.list(query));
          pages.push(page.tasks);
          caches.push(page.xCache ?? "");
          cursor = page.nextCursor;
          if (pages.length > 10_000) throw new Error("the cursor walk does not end");
        } while (cursor !== null);
        return { pages, caches, cursors };
      }

      function expectStrictlyDescending(ids: number[]) {
        for (let i = 1; i < ids.length; i++) expect(ids[i] as number).toBeLessThan(ids[i - 1] as number);
      }

      test("is a MISS on a cold cache, then a HIT, and serves Postgres's tasks newest first", async () => {
        await make("cold list 1");
        await make("cold list 2");
        await withColdCache(async (cold) => {
          const first = await pageFrom(await cold.list());
          expect(first.xCache).toBe("MISS");
          const second = await pageFrom(await cold.list());
          expect(second.xCache).toBe("HIT");
          const rows = (await dbRows()).slice(0, 50);
          expect(first.tasks).toEqual(rows);
          expect(second.tasks).toEqual(rows);
          expectStrictlyDescending(first.tasks.map((t) => t.id));
        });
      });

      test("a warm list stays a HIT through a POST and shows the new task first", async () => {
        await pageFrom(await api.list());
        const created = await make("still a hit");
        const page = await pageFrom(await api.list());
        expect(page.xCache).toBe("HIT");
        expect(page.tasks[0]).toEqual(created);
      });

      test.each([1, 0])(
        "a cursor walk with limit=3 returns every task exactly once, id descending, ending with nextCursor null (table size %i mod 3)",
        async (residue) => {
          // Pad first so our 7 are the newest, then make the table's size land on the residue wanted.
          let total = (await dbRows()).length + 7;
          while (total % 3 !== residue) {
            await make("walk padding");
            total++;
          }
          const mine: Task[] = [];
          for (let i = 0; i < 7; i++) mine.push(await make(`walk ${i}`));
          const expected = (await dbRows()).map((t) => t.id);
          expect(expected).toHaveLength(total);

          const check = ({ pages }: { pages: Task[][] }) => {
            const ids = pages.flat().map((t) => t.id);
            expect(ids).toEqual(expected);
            expect(new Set(ids).size).toBe(ids.length);
            expectStrictlyDescending(ids);
            expect(ids.slice(0, 7)).toEqual(mine.map((t) => t.id).reverse());
            expect(pages.slice(0, -1).every((p) => p.length === 3)).toBe(true);
            expect(pages[pages.length - 1]).toHaveLength(residue === 0 ? 3 : residue);
            expect(pages.length).toBe(Math.ceil(total / 3));
          };
          await withColdCache(async (cold) => {
            const coldWalk = await walk(cold, 3);
            expect(coldWalk.caches[0]).toBe("MISS");
            check(coldWalk);
            const warmWalk = await walk(cold, 3);
            expect(warmWalk.caches.every((c) => c === "HIT")).toBe(true);
            check(warmWalk);
          });
          const final = await walk(api, 3);
          check(final);

          // The last page served cold (read from Postgres, not from the list index) also ends the walk.
          const lastCursor = final.cursors[final.cursors.length - 1];
          expect(lastCursor).toBeTypeOf("string");
          await withColdCache(async (cold) => {
            const last = await pageFrom(await cold.list(`?limit=3&cursor=${encodeURIComponent(lastCursor ?? "")}`));
            expect(last.xCache).toBe("MISS");
            expect(last.tasks).toEqual(final.pages[final.pages.length - 1]);
            expect(last.nextCursor).toBeNull();
          });
        },
      );

      test("a cursor walk neither repeats nor skips when tasks are created and deleted between pages", async () => {
        const mine: Task[] = [];
        for (let i = 0; i < 7; i++) mine.push(await make(`moving walk ${i}`));
        const before = (await dbRows()).map((t) => t.id);
        const first = await pageFrom(await api.list("?limit=3"));
        expect(first.tasks.map((t) => t.id)).toEqual(before.slice(0, 3));
        expect(first.nextCursor).not.toBeNull();

        const added = await make("added mid-walk");
        const removed = mine[1] as Task; // not on the first page
        expect((await read(await api.remove(removed.id))).status).toBe(204);

        const seen = first.tasks.map((t) => t.id);
        let cursor = first.nextCursor;
        while (cursor !== null) {
          const page = await pageFrom(await api.list(`?limit=3&cursor=${encodeURIComponent(cursor)}`));
          seen.push(...page.tasks.map((t) => t.id));
          cursor = page.nextCursor;
        }
        expect(seen).toEqual(before.filter((id) => id !== removed.id));
        expect(seen).not.toContain(added.id);
      });

      test("without limit a page holds 50 tasks, limit=200 holds 200, and the next page follows on", async () => {
        let count = (await dbRows()).length;
        while (count < 201) {
          await store.forUser(owner).create({ title: `bulk ${count}` });
          count++;
        }
        const rows = await dbRows();
        const byDefault = await pageFrom(await api.list());
        expect(byDefault.tasks).toEqual(rows.slice(0, 50));
        expect(byDefault.nextCursor).not.toBeNull();
        const second = await pageFrom(await api.list(`?cursor=${encodeURIComponent(byDefault.nextCursor ?? "")}`));
        expect(second.tasks).toEqual(rows.slice(50, 100));
        const max = await pageFrom(await api.list("?limit=200"));
        expect(max.tasks).toEqual(rows.slice(0, 200));
        expect(max.nextCursor).not.toBeNull();
        const rest = await pageFrom(await api.list(`?limit=200&cursor=${encodeURIComponent(max.nextCursor ?? "")}`));
        expect(rest.tasks).toEqual(rows.slice(200, 400));
      });
    });

    // ---- the database down ------------------------------------------------------------------

    describeFull("with the database unavailable", () => {
      const unavailable = () =>
        new TaskError("service_unavailable", "The database is unavailable. Try again shortly.", {
          cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432\n    at TCPConnectWrap.afterConnect (node:net:1555:16)"), {
            code: "ECONNREFUSED",
          }),
        });

      test.each<CacheDriverChoice>(["none", backend.cacheDriver])(
        "with Postgres unreachable (cache: %s) every route is 503 service_unavailable without driver text",
        async (driver) => {
          const prefix = uniqueName("wtt_down");
          const port = await closedPort();
          const cache = makeCache(driver, prefix);
          const databases: Database[] = [];
          // A fresh pool per request: postgres.js backs off between reconnects, and one pool refused
          // a dozen times would make later requests wait seconds for their connection attempt. Two
          // connections, because a cold list runs two queries at once (page fill and index build):
          // with one, the second waits out a reconnect backoff after the response has gone, and
          // close() then waits its 5 s grace for it.
          const client = apiFor(async () => {
            const database = await openDatabase({
              kind: "postgres",
              url: `postgres://postgres@127.0.0.1:${port}/x`,
              poolMax: 2,
              prepare: true,
              timeoutMs: 1000,
            });
            databases.push(database);
            return new TaskStore({ database, cache }).forUser(owner);
          });
          try {
            for (const [label, send] of everyRoute(client)) {
              const error = await errorFrom(await send(), 503, "service_unavailable").catch((err: unknown) => {
                throw new Error(`${label}: ${String(err)}`);
              });
              expect(error.issues).toBeUndefined();
            }
            expect(databases).toHaveLength(everyRoute(client).length);
            for (const [label, status, code, send] of invalidRequests(client)) {
              await errorFrom(await send(), status, code).catch((err: unknown) => {
                throw new Error(`${label}: ${String(err)}`);
              });
            }
          } finally {
            await Promise.allSettled(databases.map((d) => d.close()));
            await cache?.close();
            if (usesSharedRedis(driver)) await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
          }
        },
      );

      test("an authentication that rejects with service_unavailable makes every route 503 without the cause's text", async () => {
        let calls = 0;
        const client = apiFor(() => {
          calls++;
          return Promise.reject(unavailable());
        });
        const routes = everyRoute(client);
        for (const [label, send] of routes) {
          await errorFrom(await send(), 503, "service_unavailable").catch((err: unknown) => {
            throw new Error(`${label}: ${String(err)}`);
          });
        }
        expect(calls).toBe(routes.length);
      });

      test("authentication comes first: while it cannot be checked, even invalid input is 503 service_unavailable", async () => {
        let calls = 0;
        const client = apiFor(() => {
          calls++;
          return Promise.reject(unavailable());
        });
        const requests = invalidRequests(client);
        for (const [label, , , send] of requests) {
          const error = await errorFrom(await send(), 503, "service_unavailable").catch((err: unknown) => {
            throw new Error(`${label}: ${String(err)}`);
          });
          expect(error.issues).toBeUndefined();
        }
        expect(calls).toBe(requests.length);
      });
    });
  });
});
