import { connect } from "node:net";
import { test as base, expect, type APIRequestContext } from "@playwright/test";
import { createApiKey, signUpVia } from "./fixtures";

// The edges of HTTP that Next.js, Node or the client decide before a route handler runs, against
// the real production server: malformed URLs, methods nobody serves, absolute-form targets, a
// client that hangs up mid-body, bytes that are not UTF-8, titles that show as nothing. Raw
// requests go over a bare socket, so nothing between the test and the server tidies them up.

const test = base.extend<{ program: { request: APIRequestContext; key: string } }>({
  program: async ({ playwright, baseURL }, provide) => {
    const person = await playwright.request.newContext({ baseURL });
    await signUpVia(person);
    const { key } = await createApiKey(person, "e2e edges");
    await person.dispose();
    const request = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { Authorization: `Bearer ${key}` } });
    await provide({ request, key });
    await request.dispose();
  },
});

type Reply = { status: number; headers: Record<string, string>; body: string };

function serverPort(baseURL: string | undefined): number {
  return Number(new URL(baseURL ?? "http://127.0.0.1:3100").port || 80);
}

/** Writes `text` as it is on a fresh socket and reads the answer until the server closes. */
function sendRaw(baseURL: string | undefined, text: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = connect(serverPort(baseURL), "127.0.0.1");
    let data = "";
    socket.setEncoding("latin1");
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer within 10 s")));
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const split = data.indexOf("\r\n\r\n");
      const head = split === -1 ? data : data.slice(0, split);
      const [statusLine = "", ...lines] = head.split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(":");
        if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      let body = split === -1 ? "" : data.slice(split + 4);
      // Next.js streams some answers chunked: keep only the payload.
      if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = body.replace(/^[0-9a-f]+\r\n|\r\n[0-9a-f]+\r\n/gi, "").replace(/\r\n$/, "");
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body });
    });
    socket.write(text);
  });
}

function get(method: string, target: string, headers = ""): string {
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers}\r\n`;
}

function jsonError(reply: Reply): { code: string; message: string } {
  expect(reply.headers["content-type"], reply.body).toMatch(/^application\/json/);
  return (JSON.parse(reply.body) as { error: { code: string; message: string } }).error;
}

/** The request count /api/metrics reports for one method, route and status. */
async function requestCount(request: APIRequestContext, method: string, route: string, status: number): Promise<number> {
  const text = await (await request.get("/api/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith(`wt_http_request_duration_seconds_count{method="${method}",route="${route}",status="${status}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

test("A program sending a URL with a malformed percent-encoding gets a 400 invalid_url JSON error, logged and counted", async ({ baseURL, program }) => {
  const before = await requestCount(program.request, "GET", "/api/tasks/[id]", 400);
  const auth = `Authorization: Bearer ${program.key}\r\n`;
  for (const target of ["/api/tasks/%", "/api/tasks/%zz", "/api/tasks/%ED%A0%80", "/api/tasks/%C0%80", "/api/tasks/1?x=%zz", "/api/tasks/1?x=%C0%80"]) {
    const reply = await sendRaw(baseURL, get("GET", target, `${auth}x-request-id: e2e-bad-url\r\n`));
    expect(reply.status, `GET ${target}: ${reply.body}`).toBe(400);
    expect(jsonError(reply)).toEqual({ code: "invalid_url", message: expect.stringMatching(/percent-encoding/) });
    expect(reply.headers["x-request-id"]).toBe("e2e-bad-url");
    expect(reply.headers["x-content-type-options"]).toBe("nosniff");
    expect(reply.headers["content-security-policy"]).toBe("default-src 'none'; frame-ancestors 'none'");
  }
  const list = await sendRaw(baseURL, get("GET", "/api/tasks?limit=%zz", auth));
  expect(list.status).toBe(400);
  expect(jsonError(list).code).toBe("invalid_url");
  expect(await requestCount(program.request, "GET", "/api/tasks/[id]", 400)).toBe(before + 6);
  // A well-formed escape is an id like any other.
  expect((await sendRaw(baseURL, get("GET", "/api/tasks/%31", auth))).status).not.toBe(400);
});

test("A program using TRACE, an unknown method or one a route does not serve gets a 405 naming the route's methods", async ({ baseURL }) => {
  for (const [method, target, allow] of [
    ["TRACE", "/api/tasks", "GET, HEAD, OPTIONS, POST"],
    ["TRACE", "/api/ping", "GET, HEAD, OPTIONS"],
    ["FOO", "/api/tasks", "GET, HEAD, OPTIONS, POST"],
    ["PUT", "/api/tasks", "GET, HEAD, OPTIONS, POST"],
    ["POST", "/api/tasks/1", "DELETE, GET, HEAD, OPTIONS, PATCH"],
    ["PROPFIND", "/api/health", "GET, HEAD, OPTIONS"],
    ["CONNECT", "/api/tasks", "GET, HEAD, OPTIONS, POST"],
    ["TRACE", "/", "GET, HEAD"],
  ] as const) {
    const reply = await sendRaw(baseURL, get(method, target));
    expect(reply.status, `${method} ${target}: ${reply.body}`).toBe(405);
    expect(reply.headers["allow"], `${method} ${target}`).toBe(allow);
    expect(jsonError(reply).code).toBe("method_not_allowed");
  }
  // What a route serves still answers as before: OPTIONS lists the same methods.
  const options = await sendRaw(baseURL, get("OPTIONS", "/api/tasks"));
  expect(options.status).toBe(204);
  expect(options.headers["allow"]).toBe("GET, HEAD, OPTIONS, POST");
});

test("A request with an absolute-form target is never redirected to the origin it names", async ({ baseURL }) => {
  const ping = await sendRaw(baseURL, get("GET", "http://evil.example/api/ping"));
  expect(ping.status, ping.body).toBe(200);
  expect(JSON.parse(ping.body)).toEqual({ ok: true });
  expect(ping.headers["location"]).toBeUndefined();

  const page = await sendRaw(baseURL, get("GET", "http://evil.example/sign-in"));
  expect(page.status).toBe(200);
  expect(page.body).not.toContain("evil.example");

  // Whatever Next.js still redirects (here a doubled slash), it redirects within this server.
  for (const target of ["http://evil.example//api/ping", "https://evil.example/api/tasks/", "http://evil.example//evil.example/x"]) {
    const reply = await sendRaw(baseURL, get("GET", target));
    expect(reply.headers["location"] ?? "", target).not.toMatch(/^[a-z]+:|^\/\//i);
    expect(`${reply.headers["location"] ?? ""} ${reply.headers["refresh"] ?? ""} ${reply.body}`, target).not.toMatch(/https?:\/\/evil\.example/);
  }

  const star = await sendRaw(baseURL, get("OPTIONS", "*"));
  expect(star.status).toBe(400);
  expect(jsonError(star).code).toBe("invalid_url");
});

test("A client that hangs up in the middle of its body is not counted as a server error", async ({ baseURL, program }) => {
  const before = { aborted: await requestCount(program.request, "POST", "/api/tasks", 400), failed: await requestCount(program.request, "POST", "/api/tasks", 500) };
  await new Promise<void>((resolve, reject) => {
    const socket = connect(serverPort(baseURL), "127.0.0.1");
    socket.on("error", reject);
    socket.write(
      `POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${program.key}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"title":"half a`,
      () => setTimeout(() => (socket.destroy(), resolve()), 200),
    );
  });
  await expect.poll(() => requestCount(program.request, "POST", "/api/tasks", 400), { timeout: 10_000 }).toBe(before.aborted + 1);
  expect(await requestCount(program.request, "POST", "/api/tasks", 500)).toBe(before.failed);
});

test("A program sending a body that is not UTF-8 gets 400 invalid_json, and nothing is stored", async ({ program }) => {
  const tag = `utf8-${Date.now()}`;
  const body = Buffer.concat([Buffer.from(`{"title":"${tag} caf`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
  const res = await program.request.post("/api/tasks", { data: body, headers: { "Content-Type": "application/json" } });
  expect(res.status()).toBe(400);
  expect(await res.json()).toEqual({ error: { code: "invalid_json", message: "The request body is not valid UTF-8." } });
  const list = (await (await program.request.get("/api/tasks?limit=200")).json()) as { tasks: Array<{ title: string }> };
  expect(list.tasks.filter((t) => t.title.startsWith(tag))).toEqual([]);
});

test("A program can't give a task a title that shows as nothing, or one with a bidirectional override", async ({ program }) => {
  for (const title of ["\u200b\u200c\u200d", "\u2060\ufeff", "\u0301\u0301", "\u3000\u00a0"]) {
    const res = await program.request.post("/api/tasks", { data: { title } });
    expect(res.status(), JSON.stringify(title)).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "validation_failed" } });
  }
  const bidi = await program.request.post("/api/tasks", { data: { title: "invoice\u202Efdp.exe" } });
  expect(bidi.status()).toBe(400);
  expect(await bidi.json()).toMatchObject({
    error: { code: "validation_failed", message: expect.stringContaining("Titles can't contain the bidirectional control U+202E.") },
  });

  const created = await program.request.post("/api/tasks", { data: { title: `edges ${Date.now()}` } });
  expect(created.status()).toBe(201);
  const task = (await created.json()) as { id: number };
  const patched = await program.request.patch(`/api/tasks/${task.id}`, { data: { title: "\u200b" } });
  expect(patched.status()).toBe(400);
  expect(await patched.json()).toMatchObject({ error: { code: "validation_failed", message: expect.stringContaining("visible character") } });
  expect((await program.request.delete(`/api/tasks/${task.id}`)).status()).toBe(204);
});
