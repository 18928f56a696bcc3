import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import path from "node:path";
import { sql as drizzleSql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from "vitest";
import { toTaskError } from "@/lib/db/errors";
import { createLogger, log } from "@/lib/log";
import { metrics } from "@/lib/metrics";
import { API_ROUTES, guardRawRequests } from "@/lib/http/rawRequest";
import { readJsonBody } from "@/lib/http/responses";
import type { RequestLine } from "@/lib/http/route";
import { withRequestLog } from "@/lib/http/route";
import { createTask, updateTask, type TasksFor } from "@/lib/http/taskHandlers";
import type { UserTaskStore } from "@/lib/store/userTasks";
import { isTaskError } from "@/lib/tasks/errors";
import { rawRequest } from "../support/http";
import { TEST_DATABASE_URL } from "../support/services";

// The edges of the HTTP layer that Next.js, Node or the client decide before a handler runs: the
// raw-request checks (lib/http/rawRequest.ts) on a real Node server, and request bodies that are
// cut short, too slow or not UTF-8, through the route wrapper the app uses.

// ---- the raw-request checks, on a Node server standing in for Next.js ------------------------

type Reply = { status: number; headers: Record<string, string>; body: string };

/** Sends `text` as it is on a fresh socket and reads the whole answer (the server closes). */
function send(port: number, text: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const [head = "", ...rest] = data.split("\r\n\r\n");
      const [statusLine = "", ...lines] = head.split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(":");
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: rest.join("\r\n\r\n") });
    });
    socket.write(text);
  });
}

function requestText(method: string, target: string, extra = ""): string {
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`;
}

describe("raw requests, checked before Next.js sees them", () => {
  let server: Server;
  let port: number;
  const seen: string[] = [];
  const lines: RequestLine[] = [];

  beforeAll(async () => {
    // What "Next.js" is handed: the target after the checks, answered 200 with it.
    server = createServer((req: IncomingMessage, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { "Content-Type": "text/plain", Connection: "close" });
      res.end(`next saw ${req.url}`);
    });
    guardRawRequests(server, (line) => lines.push(line));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(() => {
    seen.length = 0;
    lines.length = 0;
  });

  test.each(["/api/tasks/%", "/api/tasks/%zz", "/api/tasks/%ED%A0%80", "/api/tasks/%C0%80", "/api/tasks?limit=%", "/api/tasks/1?x=%zz", "/api/nope/%E2%82"])(
    "GET %s, a malformed percent-encoding, is a logged 400 invalid_url JSON error",
    async (target) => {
      const reply = await send(port, requestText("GET", target, "x-request-id: edge-1\r\n"));
      expect(reply.status).toBe(400);
      expect(reply.headers["content-type"]).toBe("application/json");
      expect(reply.headers["cache-control"]).toBe("no-store");
      expect(reply.headers["x-content-type-options"]).toBe("nosniff");
      expect(reply.headers["x-request-id"]).toBe("edge-1");
      expect(JSON.parse(reply.body)).toEqual({ error: { code: "invalid_url", message: expect.any(String) } });
      expect(seen).toEqual([]);
      expect(lines).toEqual([expect.objectContaining({ requestId: "edge-1", method: "GET", status: 400, code: "invalid_url" })]);
      expect(lines[0]?.route).toMatch(/^\/api\/tasks|^\(unmatched\)$/);
    },
  );

  test("a well-formed percent-encoding goes through untouched", async () => {
    const reply = await send(port, requestText("GET", "/api/tasks/%31?x=caf%C3%A9"));
    expect(reply.status).toBe(200);
    expect(seen).toEqual(["GET /api/tasks/%31?x=caf%C3%A9"]);
    expect(lines).toEqual([]);
  });

  test.each([
    ["TRACE", "/api/tasks", "GET, HEAD, OPTIONS, POST"],
    ["PUT", "/api/tasks", "GET, HEAD, OPTIONS, POST"],
    ["PROPFIND", "/api/tasks/7", "DELETE, GET, HEAD, OPTIONS, PATCH"],
    ["GET", "/api/keys/abc", "DELETE, OPTIONS"],
    ["TRACE", "/api/auth/get-session", "GET, HEAD, OPTIONS, POST"],
    ["OPTIONS", "/api/openapi.json", "GET, HEAD"],
    ["FOO", "/api/tasks", "GET, HEAD, OPTIONS, POST"],
    ["FOO", "/api/tasks/1", "DELETE, GET, HEAD, OPTIONS, PATCH"],
    ["CONNECT", "/api/tasks", "GET, HEAD, OPTIONS, POST"],
    ["TRACE", "/", "GET, HEAD"],
  ])("%s %s is a 405 method_not_allowed with Allow: %s", async (method, target, allow) => {
    const reply = await send(port, requestText(method, target));
    expect(reply.status).toBe(405);
    expect(reply.headers["allow"]).toBe(allow);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(reply.body)).toMatchObject({ error: { code: "method_not_allowed" } });
    expect(seen).toEqual([]);
    expect(lines).toEqual([expect.objectContaining({ method, status: 405, code: "method_not_allowed" })]);
  });

  test("CONNECT to another host is refused too, not dropped", async () => {
    const reply = await send(port, "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n");
    expect(reply.status).toBe(405);
    expect(JSON.parse(reply.body)).toMatchObject({ error: { code: "method_not_allowed" } });
  });

  test("the methods a route serves go through, and an unknown API path is left to Next.js", async () => {
    for (const [method, target] of [
      ["GET", "/api/tasks"],
      ["HEAD", "/api/tasks"],
      ["OPTIONS", "/api/tasks"],
      ["PATCH", "/api/tasks/1"],
      ["DELETE", "/api/keys/abc"],
      ["POST", "/api/auth/sign-in/email"],
      ["TRACE", "/api/nope"],
      ["PUT", "/"],
    ]) {
      expect((await send(port, requestText(method as string, target as string))).status, `${method} ${target}`).toBe(200);
    }
    expect(lines).toEqual([]);
  });

  test.each([
    ["http://evil.example/api/ping", "/api/ping"],
    ["HTTP://evil.example:8080/sign-in?next=/cache", "/sign-in?next=/cache"],
    ["https://evil.example", "/"],
    ["http://evil.example?x=1", "/?x=1"],
    ["http://evil.example//evil2.example/x", "//evil2.example/x"],
  ])("an absolute-form target %s reaches Next.js as the path %s, its authority dropped", async (target, origin) => {
    const reply = await send(port, requestText("GET", target));
    expect(reply.status).toBe(200);
    expect(seen).toEqual([`GET ${origin}`]);
  });

  test("an absolute-form target is checked like any other", async () => {
    const reply = await send(port, requestText("GET", "http://evil.example/api/tasks/%zz"));
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.body)).toMatchObject({ error: { code: "invalid_url" } });
  });

  test("an asterisk-form or other non-path target is a 400 invalid_url", async () => {
    for (const target of ["*", "ftp://evil.example/x"]) {
      const reply = await send(port, requestText("OPTIONS", target));
      expect(reply.status, target).toBe(400);
      expect(JSON.parse(reply.body)).toMatchObject({ error: { code: "invalid_url" } });
    }
    expect(seen).toEqual([]);
  });

  test("installing twice changes nothing", async () => {
    guardRawRequests(server, (line) => lines.push(line));
    await send(port, requestText("TRACE", "/api/tasks"));
    expect(lines).toHaveLength(1);
  });
});

test("the route table the raw checks use lists exactly the methods each app/api route exports", () => {
  const root = path.join(process.cwd(), "app/api");
  const found: Array<{ route: string; methods: string[]; staticFile?: true }> = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name === "route.ts") {
        const source = readFileSync(full, "utf8");
        const methods = [...source.matchAll(/^export\s+(?:const|function|async\s+function)\s+(GET|HEAD|OPTIONS|POST|PUT|DELETE|PATCH)\b/gm)].map((m) => m[1] as string).sort();
        const route = `/api/${path.relative(root, dir).split(path.sep).join("/")}`;
        found.push({ route, methods, ...(/export const dynamic = "force-static"/.test(source) ? { staticFile: true as const } : {}) });
      }
    }
  };
  walk(root);
  const table = API_ROUTES.map((r) => ({ ...r, methods: [...r.methods].sort() }));
  expect([...table].sort((a, b) => a.route.localeCompare(b.route))).toEqual(found.sort((a, b) => a.route.localeCompare(b.route)));
});

// ---- request bodies --------------------------------------------------------------------------

/** A store the handlers must never reach: every body here is refused while it is read. */
const unreachable: TasksFor = async () =>
  new Proxy({} as UserTaskStore, {
    get(_target, property) {
      if (property === "then") return undefined; // awaited as the result of tasksFor
      throw new Error("the store must not be reached");
    },
  });

const createRoute = withRequestLog("/api/tasks", (req: Request) => createTask(unreachable, req));
const patchRoute = withRequestLog("/api/tasks/[id]", (req: Request) => updateTask(unreachable, req, "1"));

/** A body that sends `first`, then fails as a reset connection does under Next.js. */
function cutShort(first: string): ReadableStream<Uint8Array<ArrayBuffer>> {
  let sent = false;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new TextEncoder().encode(first));
      } else controller.error(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
    },
  });
}

/** A body that sends `first`, then nothing more for `pauseMs`. */
function trickle(first: string, pauseMs: number, rest = '"}'): ReadableStream<Uint8Array<ArrayBuffer>> {
  let step = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    async pull(controller) {
      step++;
      if (step === 1) controller.enqueue(new TextEncoder().encode(first));
      else if (step === 2) {
        await new Promise((r) => setTimeout(r, pauseMs));
        controller.enqueue(new TextEncoder().encode(rest));
      } else controller.close();
    },
  });
}

function postWith(body: ReadableStream<Uint8Array<ArrayBuffer>> | Uint8Array<ArrayBuffer>): Request {
  return rawRequest("POST", "/api/tasks", { body, headers: { "content-type": "application/json" } });
}

async function httpCount(route: string, status: string): Promise<number> {
  const metric = await metrics().httpDuration.get();
  return metric.values.find((v) => v.metricName?.endsWith("_count") && v.labels.route === route && v.labels.status === status)?.value ?? 0;
}

describe("request bodies", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  test("a body cut short by the client is a 400 request_aborted, logged at info on the request line and never counted as a 5xx", async () => {
    const info = vi.spyOn(log, "info");
    const error = vi.spyOn(log, "error");
    const before500 = await httpCount("/api/tasks", "500");
    const before400 = await httpCount("/api/tasks", "400");
    const res = await createRoute(postWith(cutShort('{"title":"half a')), undefined);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: "request_aborted", message: expect.any(String) } });
    expect(error).not.toHaveBeenCalled();
    expect(info).toHaveBeenCalledWith("request", expect.objectContaining({ method: "POST", route: "/api/tasks", status: 400, code: "request_aborted" }));
    expect(info).toHaveBeenCalledTimes(1);
    expect(await httpCount("/api/tasks", "500")).toBe(before500);
    expect(await httpCount("/api/tasks", "400")).toBe(before400 + 1);
  });

  test("a body slower than the limit is a 408 request_timeout, and the connection is not kept", async () => {
    const started = performance.now();
    await expect(readJsonBody(postWith(trickle('{"title":"slo', 2000)), { timeoutMs: 150 })).rejects.toSatisfy(
      (err: unknown) => isTaskError(err) && err.code === "request_timeout" && err.status === 408,
    );
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("through the route wrapper, a slow body answers 408 JSON on the request line", async () => {
    const info = vi.spyOn(log, "info");
    const route = withRequestLog("/api/tasks", async (req: Request) => {
      await readJsonBody(req, { timeoutMs: 150 });
      return new Response(null, { status: 204 });
    });
    const res = await route(postWith(trickle('{"title":"slo', 2000)), undefined);
    expect(res.status).toBe(408);
    expect(res.headers.get("connection")).toBe("close");
    expect(await res.json()).toEqual({ error: { code: "request_timeout", message: "The request body must arrive within 150 ms." } });
    expect(info).toHaveBeenCalledWith("request", expect.objectContaining({ status: 408, code: "request_timeout" }));
  });

  test("a body that arrives in time, in pieces, is read whole", async () => {
    expect(await readJsonBody(postWith(trickle('{"title":"in pie', 50, 'ces"}')), { timeoutMs: 1000 })).toEqual({ title: "in pieces" });
  });

  test("the default limit is REQUEST_BODY_TIMEOUT_MS, 30 s unless set", async () => {
    const { envSchema } = await import("@/lib/env");
    expect(envSchema.parse({}).REQUEST_BODY_TIMEOUT_MS).toBe(30_000);
    expect(envSchema.parse({ REQUEST_BODY_TIMEOUT_MS: "250" }).REQUEST_BODY_TIMEOUT_MS).toBe(250);
    for (const bad of ["99", "600001", "1s"]) expect(envSchema.safeParse({ REQUEST_BODY_TIMEOUT_MS: bad }).success, bad).toBe(false);
  });

  test.each([
    ["a lone continuation byte", [0x80]],
    ["a truncated sequence", [0xe2, 0x82]],
    ["an overlong encoding of /", [0xc0, 0xaf]],
    ["an encoded surrogate", [0xed, 0xa0, 0x80]],
    ["a byte that is never UTF-8", [0xff]],
  ])("a title with %s is refused as invalid_json, not stored as U+FFFD", async (_label, bytes) => {
    const body = new Uint8Array([...new TextEncoder().encode('{"title":"ab'), ...bytes, ...new TextEncoder().encode('c"}')]);
    for (const res of [await createRoute(postWith(body), undefined), await patchRoute(rawRequest("PATCH", "/api/tasks/1", { body, headers: { "content-type": "application/json" } }), undefined)]) {
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: { code: "invalid_json", message: "The request body is not valid UTF-8." } });
    }
  });
});

// ---- logs, with errors from a live Postgres ----------------------------------------------------

describe("logs never carry SQL parameters or titles", () => {
  const secret = `a title nobody may read ${Date.now()}`;
  let client: postgres.Sql;
  beforeAll(() => {
    // debug: true makes postgres.js put the statement and its values on errors as enumerable fields.
    client = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {}, debug: true });
  });
  afterAll(async () => {
    await client.end();
  });

  function logged(fields: Record<string, unknown>): string {
    const lines: string[] = [];
    createLogger("debug", { write: (chunk: string) => void lines.push(chunk) }).warn(fields, "database unavailable");
    return lines.join("");
  }

  async function failure(run: () => Promise<unknown>): Promise<unknown> {
    try {
      await run();
    } catch (err) {
      return err;
    }
    throw new Error("expected the statement to fail");
  }

  // Read-only statements that fail on the server at once: nothing is created on the shared server.
  test("a postgres.js error from the server, and drizzle's wrapper of it, log their SQLSTATE and nothing of the statement", async () => {
    const direct = await failure(() => client`select ${secret}::int as n`);
    expect(Object.keys(direct as object)).toEqual(expect.arrayContaining(["query", "parameters", "args"]));
    expect((direct as Error).message).toContain(secret);
    const wrapped = await failure(() => drizzle(client).execute(drizzleSql`select ${secret}::int as n`));
    expect((wrapped as Error).message).toContain(secret);

    for (const err of [direct, wrapped, toTaskError(wrapped)]) {
      const text = logged({ err });
      expect(text).not.toContain(secret);
      expect(text).not.toMatch(/select|\$1|params:/i);
      expect(text).toContain('"code":"22P02"');
      expect(text).toContain('invalid input syntax for type integer: \\"[redacted]\\"');
    }
  });
});
