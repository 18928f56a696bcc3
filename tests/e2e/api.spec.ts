import { test as base, expect, type APIRequestContext } from "@playwright/test";
import { createApiKey, signUpVia } from "./fixtures";

// The REST API through the real production server (routes, instrumentation and the store opened
// at start-up together), where error mapping once broke across bundles. A program holds an API key
// of a fresh account and sends nothing else: no cookie, no Origin.
const test = base.extend<{ request: APIRequestContext }>({
  request: async ({ playwright, baseURL }, provide) => {
    const person = await playwright.request.newContext({ baseURL });
    await signUpVia(person);
    const { key } = await createApiKey(person, "e2e program");
    await person.dispose();
    const program = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { Authorization: `Bearer ${key}` } });
    await provide(program);
    await program.dispose();
  },
});

test("A program creates, reads, updates and deletes a task over HTTP and gets the documented statuses", async ({ request }) => {
  const created = await request.post("/api/tasks", { data: { title: `api story ${Date.now()}` } });
  expect(created.status()).toBe(201);
  const task = (await created.json()) as { id: number; version: number };
  expect(created.headers()["location"]).toBe(`/api/tasks/${task.id}`);

  const read = await request.get(`/api/tasks/${task.id}`);
  expect(read.status()).toBe(200);
  expect(read.headers()["etag"]).toBe('"v1"');
  expect(["HIT", "MISS"]).toContain(read.headers()["x-cache"]);
  expect((await request.get(`/api/tasks/${task.id}`, { headers: { "If-None-Match": '"v1"' } })).status()).toBe(304);

  const updated = await request.patch(`/api/tasks/${task.id}`, { data: { done: true }, headers: { "If-Match": '"v1"' } });
  expect(updated.status()).toBe(200);
  const stale = await request.patch(`/api/tasks/${task.id}`, { data: { done: false }, headers: { "If-Match": '"v1"' } });
  expect(stale.status()).toBe(412);
  expect(await stale.json()).toMatchObject({ error: { code: "precondition_failed" } });

  expect((await request.delete(`/api/tasks/${task.id}`)).status()).toBe(204);
  const again = await request.delete(`/api/tasks/${task.id}`);
  expect(again.status()).toBe(404);
  expect(await again.json()).toMatchObject({ error: { code: "not_found" } });
  expect((await request.get(`/api/tasks/${task.id}`)).status()).toBe(404);
});

test("A program sending bad input gets a 4xx JSON error, never a stack trace", async ({ request }) => {
  const badId = await request.get("/api/tasks/1abc");
  expect(badId.status()).toBe(400);
  expect(await badId.json()).toMatchObject({ error: { code: "invalid_id" } });

  const badTitle = await request.post("/api/tasks", { data: { title: "   " } });
  expect(badTitle.status()).toBe(400);
  expect(await badTitle.json()).toMatchObject({ error: { code: "validation_failed" } });

  const notJson = await request.post("/api/tasks", { data: "title=x", headers: { "Content-Type": "text/plain" } });
  expect(notJson.status()).toBe(415);

  const tooBig = await request.post("/api/tasks", { data: JSON.stringify({ title: "x".repeat(20_000) }), headers: { "Content-Type": "application/json" } });
  expect(tooBig.status()).toBe(413);

  const malformed = await request.post("/api/tasks", { data: "{", headers: { "Content-Type": "application/json" } });
  expect(malformed.status()).toBe(400);
  const body = await malformed.text();
  expect(body).not.toMatch(/at .*\.(js|ts):\d+|node_modules/);
});

test("A program without a key, or with a revoked one, gets 401 on every task route", async ({ playwright, baseURL }) => {
  const anonymous = await playwright.request.newContext({ baseURL });
  for (const [method, path] of [
    ["GET", "/api/tasks"],
    ["POST", "/api/tasks"],
    ["GET", "/api/tasks/1"],
    ["PATCH", "/api/tasks/1"],
    ["DELETE", "/api/tasks/1"],
    ["GET", "/api/keys"],
    ["POST", "/api/keys"],
  ] as const) {
    const data = method === "POST" ? (path === "/api/keys" ? { name: "x" } : { title: "x" }) : method === "PATCH" ? { done: true } : undefined;
    const res = await anonymous.fetch(path, { method, data });
    expect(res.status(), `${method} ${path}`).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: "unauthorized" } });
  }
  // A key revoked by its owner stops working at once.
  const person = await playwright.request.newContext({ baseURL });
  await signUpVia(person);
  const { id, key } = await createApiKey(person, "short-lived");
  const program = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { Authorization: `Bearer ${key}` } });
  expect((await program.get("/api/tasks")).status()).toBe(200);
  expect((await person.delete(`/api/keys/${id}`)).status()).toBe(204);
  expect((await program.get("/api/tasks")).status()).toBe(401);
  // better-auth's api-key routes are not served: keys are managed at /api/keys only; nor are the
  // account routes the product has no page for, each a way around the app's own checks.
  expect((await person.post("/api/auth/api-key/create", { data: { name: "around" } })).status()).toBe(404);
  for (const [path, data] of [
    ["/api/auth/update-user", { name: "x".repeat(5000) }],
    ["/api/auth/change-password", { currentPassword: "whatever-it-was", newPassword: "a-new-password-1", revokeOtherSessions: true }],
    ["/api/auth/revoke-sessions", {}],
    ["/api/auth/delete-user", {}],
  ] as const) {
    const res = await person.post(path, { data });
    expect(res.status(), path).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
  }
  // A key can't mint its own successor: managing keys takes the person, signed in.
  const ownKey = await createApiKey(person, "program");
  const keyed = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { Authorization: `Bearer ${ownKey.key}` } });
  expect((await keyed.post("/api/keys", { data: { name: "successor" } })).status()).toBe(403);
  await keyed.dispose();
  await Promise.all([anonymous.dispose(), person.dispose(), program.dispose()]);
});

test("An operator checks health and scrapes metrics from the running server", async ({ request }) => {
  const health = await request.get("/api/health", { headers: { "x-request-id": "e2e-health-check" } });
  expect(health.status()).toBe(200);
  expect(health.headers()["x-request-id"]).toBe("e2e-health-check");
  expect(await health.json()).toMatchObject({ status: "ok", db: { ok: true }, cache: { ok: true, breaker: "closed" } });

  await request.get("/api/tasks");
  const metrics = await request.get("/api/metrics");
  expect(metrics.status()).toBe(200);
  const text = await metrics.text();
  expect(text).toMatch(/^wt_http_request_duration_seconds_count\{method="GET",route="\/api\/tasks",status="200"\} [1-9]/m);
  expect(text).toMatch(/^wt_cache_reads_total\{outcome="(hit|miss)"\} [1-9]/m);
});
