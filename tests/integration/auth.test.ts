import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { authenticate, rateLimiterFor, sessionUser, tasksForWith, type Auth } from "@/lib/auth";
import { createKey, deleteKey, listKeys, type KeyContext } from "@/lib/http/keyHandlers";
import { auditCache, cacheState, repairCache, type OpsContext } from "@/lib/http/opsHandlers";
import { createTask, deleteTask, getTask, listTasks, updateTask } from "@/lib/http/taskHandlers";
import type { TaskStore } from "@/lib/taskStore";
import { sessionTokenOf, SESSION_EXPIRES_IN_SECONDS } from "@/lib/auth/fastSession";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { apiRequest, newCredentials, signIn, signOut, signUp, testAuth } from "../support/auth";

// Accounts, sessions and API keys through better-auth's real routes and our handlers, on every
// stack. Two store instances (each with its own auth) share the database and the cache, as two app
// servers would.

describe.each(BACKENDS)("accounts, sessions and API keys on $name", (backend) => {
  let env: TestEnv;
  let stores: TaskStore[];
  let auths: Auth[];

  beforeAll(async () => {
    env = await createTestEnv(backend);
    stores = [await env.openStore(), await env.openStore()];
    auths = stores.map((s) => testAuth(s));
  });
  afterAll(async () => {
    await env.cleanup();
  });

  const who = (i: number, req: Request) => authenticate(req, { store: stores[i]!, auth: async () => auths[i]! });
  // Limits are off here: tests/integration/rateLimit.test.ts covers them.
  const limiter = async () => rateLimiterFor(stores[0]!, true);
  const tasksOn = (i: number) => tasksForWith({ store: async () => stores[i]!, auth: async () => auths[i]!, limiter });
  const keysOn = (i: number): KeyContext => ({ store: async () => stores[i]!, auth: async () => auths[i]!, limiter });
  const statements = () => stores[0]!.database.statements.count;

  test("sign-up answers with an HttpOnly, SameSite=Lax session cookie that authenticates the new account", async () => {
    const { res, cookie, who: person } = await signUp(auths[0]!);
    expect(res.status).toBe(200);
    const line = res.headers.getSetCookie().find((l) => l.includes("session_token="));
    expect(line).toMatch(/HttpOnly/i);
    expect(line).toMatch(/SameSite=Lax/i);
    expect(line).not.toMatch(/Secure/i); // served over http here; over https it is Secure
    const principal = await who(0, apiRequest("GET", "/api/tasks", { cookie }));
    expect(principal).toMatchObject({ via: "session", email: person.email });
  });

  test("a wrong password and an unknown email get the same 401 answer, word for word", async () => {
    const { who: person } = await signUp(auths[0]!);
    const wrongPassword = await signIn(auths[0]!, { email: person.email, password: "not-the-password" });
    const unknownEmail = await signIn(auths[0]!, { email: `nobody-${person.email}`, password: person.password });
    expect(wrongPassword.res.status).toBe(401);
    expect(unknownEmail.res.status).toBe(401);
    expect(await wrongPassword.res.text()).toBe(await unknownEmail.res.text());
    expect(wrongPassword.cookie).toBe("");
    expect((await signIn(auths[0]!, person)).res.status).toBe(200);
  });

  test("passwords must be 8 to 128 characters", async () => {
    for (const [password, status] of [
      ["1234567", 400],
      ["x".repeat(129), 400],
      ["12345678", 200],
      ["y".repeat(128), 200],
    ] as const) {
      const { res } = await signUp(auths[0]!, { ...newCredentials(), password });
      expect(res.status, `password of ${password.length}`).toBe(status);
    }
  });

  test("an authenticated request costs no Postgres statement while the cache is up (cookie and API key)", async () => {
    const { cookie } = await signUp(auths[0]!);
    const made = await createKey(apiRequest("POST", "/api/keys", { cookie }, { name: "counted" }), keysOn(0));
    const { key } = (await made.json()) as { key: string };
    const tasks = tasksOn(0);
    const created = (await (await createTask(tasks, apiRequest("POST", "/api/tasks", { cookie }, { title: "counted" }))).json()) as { id: number };
    // Warm: the session and the key are cached by their first use.
    for (const credential of [{ cookie }, { key }]) {
      expect((await getTask(tasks, apiRequest("GET", `/api/tasks/${created.id}`, credential), String(created.id))).status).toBe(200);
    }
    const before = statements();
    for (let i = 0; i < 5; i++) {
      for (const credential of [{ cookie }, { key }]) {
        const res = await getTask(tasks, apiRequest("GET", `/api/tasks/${created.id}`, credential), String(created.id));
        expect(res.status).toBe(200);
        expect(res.headers.get("x-cache")).toBe("HIT");
      }
    }
    expect(statements() - before).toBe(0);
  });

  test("sign-out takes effect at once on the other instance too", async () => {
    const { cookie } = await signUp(auths[0]!);
    expect(await who(1, apiRequest("GET", "/api/tasks", { cookie }))).not.toBeNull(); // cached on both
    expect(await who(0, apiRequest("GET", "/api/tasks", { cookie }))).not.toBeNull();
    expect((await signOut(auths[0]!, cookie)).status).toBe(200);
    expect(await who(1, apiRequest("GET", "/api/tasks", { cookie }))).toBeNull();
    expect(await who(0, apiRequest("GET", "/api/tasks", { cookie }))).toBeNull();
    const res = await listTasks(tasksOn(1), apiRequest("GET", "/api/tasks", { cookie }));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: "unauthorized" } });
  });

  test("a session outlives a cache flush: one Postgres read fills it back, then the cache serves it again", async () => {
    const { cookie } = await signUp(auths[0]!);
    await stores[0]!.cache!.driver.flush();
    const before = statements();
    expect(await who(0, apiRequest("GET", "/api/tasks", { cookie }))).not.toBeNull();
    expect(statements() - before).toBeGreaterThan(0);
    const after = statements();
    expect(await who(1, apiRequest("GET", "/api/tasks", { cookie }))).not.toBeNull();
    expect(statements() - after).toBe(0);
  });

  test("the pages' session lookup answers who is signed in (name included) from the cache, with no Postgres statement", async () => {
    const { cookie, who: person } = await signUp(auths[0]!);
    const deps = { store: stores[0]!, auth: async () => auths[0]! };
    const first = await sessionUser(new Headers({ cookie }), deps);
    expect(first).toMatchObject({ email: person.email, name: person.name });
    const before = statements();
    for (let i = 0; i < 3; i++) expect(await sessionUser(new Headers({ cookie }), deps)).toEqual(first);
    expect(statements() - before).toBe(0);
    expect(await sessionUser(new Headers({ cookie: cookie.replace(/=.{4}/, "=AAAA") }), deps)).toBeNull();
    expect(await sessionUser(new Headers(), deps)).toBeNull();
    await signOut(auths[0]!, cookie);
    expect(await sessionUser(new Headers({ cookie }), deps)).toBeNull();
  });

  test("API keys: the secret is shown once and stored only hashed; the list has no secrets; a key works as a bearer token", async () => {
    const { cookie } = await signUp(auths[0]!);
    const made = await createKey(apiRequest("POST", "/api/keys", { cookie }, { name: "ci" }), keysOn(0));
    expect(made.status).toBe(201);
    const body = (await made.json()) as { id: string; name: string; key: string; createdAt: string };
    expect(body).toMatchObject({ name: "ci", key: expect.stringMatching(/^wtk_[A-Za-z]{40,}$/) });
    expect(Object.keys(body).sort()).toEqual(["createdAt", "id", "key", "name"]);
    const rows = await stores[0]!.database.db.query.apikey.findMany();
    expect(JSON.stringify(rows)).not.toContain(body.key);

    const listed = await listKeys(apiRequest("GET", "/api/keys", { cookie }), keysOn(0));
    expect(listed.status).toBe(200);
    const { keys } = (await listed.json()) as { keys: Array<Record<string, unknown>> };
    expect(keys).toEqual([{ id: body.id, name: "ci", createdAt: body.createdAt }]);
    expect(JSON.stringify(keys)).not.toContain(body.key);

    const created = await createTask(tasksOn(1), apiRequest("POST", "/api/tasks", { key: body.key }, { title: "from a program" }));
    expect(created.status).toBe(201);
    const page = (await (await listTasks(tasksOn(0), apiRequest("GET", "/api/tasks", { cookie }))).json()) as { tasks: Array<{ title: string }> };
    expect(page.tasks.map((t) => t.title)).toEqual(["from a program"]);
    const used = (await (await listKeys(apiRequest("GET", "/api/keys", { cookie }), keysOn(0))).json()) as { keys: Array<{ lastUsedAt?: string }> };
    expect(used.keys[0]?.lastUsedAt).toMatch(/^\d{4}-/);
  });

  test("an API key can't create, list or revoke keys: that takes the person, signed in (403)", async () => {
    const { cookie } = await signUp(auths[0]!);
    const { id, key } = (await (await createKey(apiRequest("POST", "/api/keys", { cookie }, { name: "program" }), keysOn(0))).json()) as { id: string; key: string };
    for (const res of [
      await createKey(apiRequest("POST", "/api/keys", { key }, { name: "successor" }), keysOn(0)),
      await listKeys(apiRequest("GET", "/api/keys", { key }), keysOn(0)),
      await deleteKey(apiRequest("DELETE", `/api/keys/${id}`, { key }), id, keysOn(0)),
    ]) {
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: { code: "forbidden" } });
    }
    const { keys } = (await (await listKeys(apiRequest("GET", "/api/keys", { cookie }), keysOn(0))).json()) as { keys: Array<{ name: string }> };
    expect(keys.map((k) => k.name)).toEqual(["program"]);
    expect(await who(0, apiRequest("GET", "/api/tasks", { key }))).not.toBeNull();
  });

  test("a revoked key stops working at once, on the instance that revoked it and on the other", async () => {
    const { cookie } = await signUp(auths[0]!);
    const { id, key } = (await (await createKey(apiRequest("POST", "/api/keys", { cookie }, { name: "doomed" }), keysOn(0))).json()) as { id: string; key: string };
    for (const i of [0, 1]) expect(await who(i, apiRequest("GET", "/api/tasks", { key }))).not.toBeNull();
    const revoked = await deleteKey(apiRequest("DELETE", `/api/keys/${id}`, { cookie }), id, keysOn(1));
    expect(revoked.status).toBe(204);
    for (const i of [0, 1]) {
      expect(await who(i, apiRequest("GET", "/api/tasks", { key }))).toBeNull();
      expect((await listTasks(tasksOn(i), apiRequest("GET", "/api/tasks", { key }))).status).toBe(401);
    }
    expect((await deleteKey(apiRequest("DELETE", `/api/keys/${id}`, { cookie }), id, keysOn(0))).status).toBe(404);
  });

  test("one user can neither list nor revoke another user's keys", async () => {
    const alice = await signUp(auths[0]!);
    const bob = await signUp(auths[0]!);
    const { id, key } = (await (await createKey(apiRequest("POST", "/api/keys", { cookie: alice.cookie }, { name: "alice's" }), keysOn(0))).json()) as { id: string; key: string };
    const bobsList = (await (await listKeys(apiRequest("GET", "/api/keys", { cookie: bob.cookie }), keysOn(0))).json()) as { keys: unknown[] };
    expect(bobsList.keys).toEqual([]);
    expect((await deleteKey(apiRequest("DELETE", `/api/keys/${id}`, { cookie: bob.cookie }), id, keysOn(0))).status).toBe(404);
    expect(await who(0, apiRequest("GET", "/api/tasks", { key }))).not.toBeNull();
  });

  test("no credential, a wrong key or a forged cookie is a 401 on every /api/tasks and /api/keys route", async () => {
    for (const credential of [{}, { key: "wtk_" + "A".repeat(64) }, { key: "not-even-our-format" }, { cookie: "better-auth.session_token=forged.c2lnbmF0dXJl" }]) {
      for (const res of [
        await listTasks(tasksOn(0), apiRequest("GET", "/api/tasks", credential)),
        await createTask(tasksOn(0), apiRequest("POST", "/api/tasks", credential, { title: "nope" })),
        await getTask(tasksOn(0), apiRequest("GET", "/api/tasks/1", credential), "1"),
        await listKeys(apiRequest("GET", "/api/keys", credential), keysOn(0)),
        await createKey(apiRequest("POST", "/api/keys", credential, { name: "nope" }), keysOn(0)),
        await deleteKey(apiRequest("DELETE", "/api/keys/abc", credential), "abc", keysOn(0)),
      ]) {
        expect(res.status, JSON.stringify(credential)).toBe(401);
        expect(await res.json()).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
      }
    }
  });

  test("a cookie-authenticated write from another origin is refused with 403; a bearer key needs no Origin", async () => {
    const { cookie } = await signUp(auths[0]!);
    const evil = new Request("http://app.test/api/tasks", {
      method: "POST",
      headers: { cookie, origin: "http://evil.example", "content-type": "application/json", host: "app.test" },
      body: JSON.stringify({ title: "csrf" }),
    });
    const refused = await createTask(tasksOn(0), evil);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: "forbidden" } });
    const same = new Request("http://app.test/api/tasks", {
      method: "POST",
      headers: { cookie, origin: "http://app.test", "content-type": "application/json", host: "app.test" },
      body: JSON.stringify({ title: "same origin" }),
    });
    expect((await createTask(tasksOn(0), same)).status).toBe(201);
    const page = (await (await listTasks(tasksOn(0), apiRequest("GET", "/api/tasks", { cookie }))).json()) as { tasks: Array<{ title: string }> };
    expect(page.tasks.map((t) => t.title)).toEqual(["same origin"]);
  });

  test("a cookie write a browser marks as cross-site is refused on every write route, whichever header says so", async () => {
    const { cookie } = await signUp(auths[0]!);
    const { id } = (await (await createTask(tasksOn(0), apiRequest("POST", "/api/tasks", { cookie }, { title: "target" }))).json()) as { id: number };
    const from = (headers: Record<string, string>) => ({ cookie, host: "app.test", "content-type": "application/json", ...headers });
    const crossSite: Array<Record<string, string>> = [
      { origin: "http://evil.example" },
      { origin: "null" },
      { origin: "http://app.test.evil.example" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { referer: "http://evil.example/page" },
      { referer: "not a url" },
    ];
    for (const headers of crossSite) {
      const label = JSON.stringify(headers);
      const sends = [
        () => createTask(tasksOn(0), new Request("http://app.test/api/tasks", { method: "POST", headers: from(headers), body: JSON.stringify({ title: "csrf" }) })),
        () => updateTask(tasksOn(0), new Request(`http://app.test/api/tasks/${id}`, { method: "PATCH", headers: from(headers), body: JSON.stringify({ done: true }) }), String(id)),
        () => deleteTask(tasksOn(0), new Request(`http://app.test/api/tasks/${id}`, { method: "DELETE", headers: from(headers) }), String(id)),
        () => createKey(new Request("http://app.test/api/keys", { method: "POST", headers: from(headers), body: JSON.stringify({ name: "csrf" }) }), keysOn(0)),
      ];
      for (const send of sends) expect((await send()).status, label).toBe(403);
    }
    // Nothing changed: the task is as it was, and no key was made.
    const task = (await (await getTask(tasksOn(0), apiRequest("GET", `/api/tasks/${id}`, { cookie }), String(id))).json()) as { version: number; done: boolean };
    expect(task).toMatchObject({ version: 1, done: false });
    expect(((await (await listKeys(apiRequest("GET", "/api/keys", { cookie }), keysOn(0))).json()) as { keys: unknown[] }).keys).toEqual([]);
    // The browser's own page, and a program that sends a cookie but no browser headers at all.
    const sameSite: Array<Record<string, string>> = [{ "sec-fetch-site": "same-origin", origin: "http://app.test" }, { referer: "http://app.test/" }, {}];
    for (const headers of sameSite) {
      const res = await updateTask(tasksOn(0), new Request(`http://app.test/api/tasks/${id}`, { method: "PATCH", headers: from(headers), body: JSON.stringify({ title: "renamed" }) }), String(id));
      expect(res.status, JSON.stringify(headers)).toBe(200);
    }
  });

  test("revoking every session of a person revokes each one, even after a flush emptied the cache's list of them", async () => {
    const person = await signUp(auths[0]!);
    const second = await signIn(auths[1]!, person.who);
    for (const cookie of [person.cookie, second.cookie]) expect(await who(1, apiRequest("GET", "/api/tasks", { cookie }))).not.toBeNull();
    await stores[0]!.cache!.driver.flush();
    // Both sessions are cached again by a request each, from Postgres.
    for (const cookie of [person.cookie, second.cookie]) expect(await who(0, apiRequest("GET", "/api/tasks", { cookie }))).not.toBeNull();
    const revoked = await auths[0]!.api.revokeSessions({ headers: new Headers({ cookie: person.cookie }) });
    expect(revoked).toMatchObject({ status: true });
    for (const i of [0, 1]) {
      for (const cookie of [person.cookie, second.cookie]) expect(await who(i, apiRequest("GET", "/api/tasks", { cookie }))).toBeNull();
    }
  });

  test("ops routes through real credentials: 401 anonymous, 403 for non-admins and for an admin's API key, 200 for an admin signed in or the CRON_SECRET", async () => {
    const admin = await signUp(auths[0]!);
    const person = await signUp(auths[0]!);
    const adminKey = ((await (await createKey(apiRequest("POST", "/api/keys", { cookie: admin.cookie }, { name: "admin's program" }), keysOn(0))).json()) as { key: string }).key;
    const cronSecret = "a-cron-secret-for-the-ops-matrix";
    const ctx: OpsContext = {
      store: async () => stores[0]!,
      principal: (req) => authenticate(req, { store: stores[0]!, auth: async () => auths[0]! }),
      cronSecret,
      adminEmails: [admin.who.email.toLowerCase()],
    };
    const send = (method: string, path: string, headers: Record<string, string>) => new Request(`http://app.test${path}`, { method, headers: { host: "app.test", ...headers } });
    const as = {
      anonymous: {},
      person: { cookie: person.cookie },
      "admin's key": { authorization: `Bearer ${adminKey}` },
      admin: { cookie: admin.cookie },
      scheduler: { authorization: `Bearer ${cronSecret}` },
    };
    const expected: Array<[string, (h: Record<string, string>) => Promise<Response>, Record<keyof typeof as, number>]> = [
      ["own audit", (h) => auditCache(ctx, send("GET", "/api/cache/audit", h)), { anonymous: 401, person: 200, "admin's key": 200, admin: 200, scheduler: 200 }],
      ["whole-store audit", (h) => auditCache(ctx, send("GET", "/api/cache/audit?scope=all", h)), { anonymous: 401, person: 403, "admin's key": 403, admin: 200, scheduler: 200 }],
      ["repair (POST)", (h) => repairCache(ctx, send("POST", "/api/cache/repair", h)), { anonymous: 401, person: 403, "admin's key": 403, admin: 200, scheduler: 200 }],
      ["repair (GET)", (h) => repairCache(ctx, send("GET", "/api/cache/repair", h)), { anonymous: 401, person: 403, "admin's key": 403, admin: 403, scheduler: 200 }],
      ["cache state", (h) => cacheState(ctx, send("GET", "/api/cache/state?ids=1", h)), { anonymous: 401, person: 200, "admin's key": 200, admin: 200, scheduler: 401 }],
      ["cache state, bad query", (h) => cacheState(ctx, send("GET", "/api/cache/state?ids=abc", h)), { anonymous: 401, person: 400, "admin's key": 400, admin: 400, scheduler: 401 }],
    ];
    for (const [route, call, statuses] of expected) {
      for (const [caller, headers] of Object.entries(as) as Array<[keyof typeof as, Record<string, string>]>) {
        const res = await call(headers);
        expect(res.status, `${route} as ${caller}`).toBe(statuses[caller]);
        if (res.status >= 400) expect((await res.json()) as unknown, `${route} as ${caller}`).toMatchObject({ error: { code: expect.any(String) } });
      }
    }
    // An admin's cookie from another site can't trigger a repair either.
    expect((await repairCache(ctx, send("POST", "/api/cache/repair", { cookie: admin.cookie, "sec-fetch-site": "cross-site" }))).status).toBe(403);
  });

  test("better-auth's list of a person's sessions comes from Postgres, whatever the cache holds", async () => {
    const person = await signUp(auths[0]!);
    await signIn(auths[0]!, person.who);
    await stores[0]!.cache!.driver.flush();
    const sessions = await auths[0]!.api.listSessions({ headers: new Headers({ cookie: person.cookie }) });
    expect(sessions).toHaveLength(2);
  });


  test("another user's task id answers exactly like a missing id on every route, with and without If-Match / If-None-Match", async () => {
    const alice = await signUp(auths[0]!);
    const bob = await signUp(auths[0]!);
    const made = await createTask(tasksOn(0), apiRequest("POST", "/api/tasks", { cookie: alice.cookie }, { title: "alice's alone" }));
    const { id } = (await made.json()) as { id: number };
    const missing = id + 1_000_000;
    const sends: Array<[string, (taskId: number) => Promise<Response>]> = [
      ["GET", (t) => getTask(tasksOn(1), apiRequest("GET", `/api/tasks/${t}`, { cookie: bob.cookie }), String(t))],
      ["GET If-None-Match", (t) => getTask(tasksOn(1), withHeader(apiRequest("GET", `/api/tasks/${t}`, { cookie: bob.cookie }), "if-none-match", '"v1"'), String(t))],
      ["PATCH", (t) => updateTask(tasksOn(1), apiRequest("PATCH", `/api/tasks/${t}`, { cookie: bob.cookie }, { done: true }), String(t))],
      ["PATCH If-Match", (t) => updateTask(tasksOn(1), withHeader(apiRequest("PATCH", `/api/tasks/${t}`, { cookie: bob.cookie }, { done: true }), "if-match", '"v1"'), String(t))],
      ["DELETE If-Match", (t) => deleteTask(tasksOn(1), withHeader(apiRequest("DELETE", `/api/tasks/${t}`, { cookie: bob.cookie }), "if-match", '"v1"'), String(t))],
      ["DELETE", (t) => deleteTask(tasksOn(1), apiRequest("DELETE", `/api/tasks/${t}`, { cookie: bob.cookie }), String(t))],
    ];
    for (const [label, send] of sends) {
      const theirs = await send(id);
      const absent = await send(missing);
      expect(theirs.status, label).toBe(404);
      expect(absent.status, label).toBe(404);
      expect((await theirs.text()).replace(String(id), "ID"), label).toBe((await absent.text()).replace(String(missing), "ID"));
      expect([...theirs.headers.keys()].sort(), label).toEqual([...absent.headers.keys()].sort());
    }
    // Alice's task went through all of that untouched.
    const mine = await getTask(tasksOn(0), apiRequest("GET", `/api/tasks/${id}`, { cookie: alice.cookie }), String(id));
    expect(await mine.json()).toMatchObject({ id, title: "alice's alone", done: false, version: 1 });
  });

  test("the cached-session path reads cookies exactly as better-auth signs them, and refuses a tampered one", async () => {
    const { res, cookie } = await signUp(auths[0]!);
    const { token } = (await res.json()) as { token: string };
    const secret = auths[0]!.options.secret;
    expect(sessionTokenOf(cookie, secret, false)).toBe(token);
    expect(sessionTokenOf(cookie, "another-secret-another-secret-12345", false)).toBeNull();
    const [name, value] = cookie.split("=") as [string, string];
    const tampered = `${name}=${encodeURIComponent(`${token.slice(0, -1)}${token.endsWith("x") ? "y" : "x"}.${decodeURIComponent(value).split(".")[1]}`)}`;
    expect(sessionTokenOf(tampered, secret, false)).toBeNull();
    expect(await who(0, apiRequest("GET", "/api/tasks", { cookie: tampered }))).toBeNull();
    // The same signature spelled in ways Node's base64 decoder takes but better-call refuses.
    const signature = decodeURIComponent(value).split(".")[1]!;
    const spellings = [signature.replace(/=$/, ""), signature.replace(/\+/g, "-").replace(/\//g, "_"), `${signature.slice(0, 10)}!!${signature.slice(10)}`, ` ${signature}`];
    for (const spelling of spellings.filter((s) => s !== signature)) {
      const respelled = `${name}=${encodeURIComponent(`${token}.${spelling}`)}`;
      expect(sessionTokenOf(respelled, secret, false), spelling).toBeNull();
      expect(await who(0, apiRequest("GET", "/api/tasks", { cookie: respelled })), spelling).toBeNull();
    }
  });

  test("a session due for its daily refresh is handed to better-auth, which extends it", async () => {
    const { res, cookie } = await signUp(auths[0]!);
    const { token } = (await res.json()) as { token: string };
    const driver = stores[0]!.cache!.driver;
    const cached = JSON.parse((await driver.getValue(token))!) as { session: { expiresAt: string } };
    // Five days left of seven: past the one-day update age.
    const soon = new Date(Date.now() + 5 * 24 * 3600 * 1000).toISOString();
    await driver.setValue(token, JSON.stringify({ ...cached, session: { ...cached.session, expiresAt: soon } }), 3600);
    expect(await who(0, apiRequest("GET", "/api/tasks", { cookie }))).not.toBeNull();
    const refreshed = JSON.parse((await driver.getValue(token))!) as { session: { expiresAt: string } };
    expect(Date.parse(refreshed.session.expiresAt)).toBeGreaterThan(Date.now() + (SESSION_EXPIRES_IN_SECONDS - 3600) * 1000);
  });
});

function withHeader(req: Request, name: string, value: string): Request {
  req.headers.set(name, value);
  return req;
}
