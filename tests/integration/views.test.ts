import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { batchTasks, createTask, listTasks, updateTask, type TasksFor } from "@/lib/http/taskHandlers";
import * as queries from "@/lib/tasks/queries";
import { tasks as tasksTable } from "@/lib/db/schema";
import { eq } from "drizzle-orm";
import type { Task, TaskCounts } from "@/lib/tasks/schema";
import type { TaskStore, UserTaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { jsonRequest, rawRequest } from "../support/http";

// Views (all / open / done, newest first or by due date), counts, due dates and batches, through
// the route handlers on every stack. After each change the cache's views are compared with
// Postgres, so a view that is right only on Postgres (or only from the cache) fails here.

type Page = { tasks: Task[]; nextCursor: string | null; counts: TaskCounts; cache: string | null };

describe.each(BACKENDS)("views, due dates and batches on $name", (backend) => {
  let env: TestEnv;
  let store: TaskStore;
  let userId: string;
  let mine: TasksFor;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    store = await env.openStore();
  });
  afterAll(async () => {
    await env.cleanup();
  });
  // A fresh account per test: counts start at zero.
  beforeEach(async () => {
    userId = await env.createUser("views");
    const own = store.forUser(userId);
    mine = async () => own;
  });

  const tasksOf = (): UserTaskStore => store.forUser(userId);
  const list = async (query = ""): Promise<Page> => {
    const res = await listTasks(mine, rawRequest("GET", `/api/tasks${query}`));
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as Omit<Page, "cache">;
    return { ...body, cache: res.headers.get("x-cache") };
  };
  const ids = async (query = "") => (await list(query)).tasks.map((t) => t.id);
  const create = async (title: string, extra: Record<string, unknown> = {}): Promise<Task> => {
    const res = await createTask(mine, jsonRequest("POST", "/api/tasks", { title, ...extra }));
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as Task;
  };
  const patch = (id: number, body: unknown) => updateTask(mine, jsonRequest("PATCH", `/api/tasks/${id}`, body), String(id));
  const batch = (body: unknown, headers: Record<string, string> = {}) => batchTasks(mine, jsonRequest("POST", "/api/tasks/batch", body, headers));

  /** Every view and the counts, from the cache's views, equal what Postgres says. */
  async function expectViewsMatchPostgres() {
    const db = store.database.db;
    for (const status of ["all", "open", "done"] as const) {
      for (const sort of ["new", "due"] as const) {
        const fromPostgres = (await queries.listTasks(db, { userId, status, sort, limit: 1000 })).map((t) => t.id);
        const served: number[] = [];
        let cursor: string | null = null;
        do {
          const page: Page = await list(`?status=${status}&sort=${sort}&limit=200${cursor ? `&cursor=${cursor}` : ""}`);
          if (store.cache) expect(page.cache, `${status}/${sort} served from the cache`).toMatch(/^(HIT|MISS)$/);
          served.push(...page.tasks.map((t) => t.id));
          cursor = page.nextCursor;
        } while (cursor);
        expect(served, `${status}/${sort}`).toEqual(fromPostgres);
      }
    }
    expect((await list()).counts).toEqual(await queries.countTasks(db, { userId }));
    const snapshot = await store.cache?.driver.forUser(userId).readIndex();
    if (store.cache) expect(snapshot, "the views are complete").not.toBeNull();
  }

  test("GET /api/tasks?status= filters open and done, counts come with every page, and the default is all", async () => {
    const a = await create("open one");
    const b = await create("done one", { done: true });
    const c = await create("open two");
    expect(await ids()).toEqual([c.id, b.id, a.id]);
    expect(await ids("?status=all")).toEqual([c.id, b.id, a.id]);
    expect(await ids("?status=open")).toEqual([c.id, a.id]);
    expect(await ids("?status=done")).toEqual([b.id]);
    const page = await list("?status=done");
    expect(page.counts).toEqual({ all: 3, open: 2, done: 1 });
    // Completing moves a task between views at once (read-your-writes), counts follow.
    expect((await patch(a.id, { done: true })).status).toBe(200);
    expect(await ids("?status=open")).toEqual([c.id]);
    expect(await ids("?status=done")).toEqual([b.id, a.id].sort((x, y) => y - x));
    expect((await list("?status=open")).counts).toEqual({ all: 3, open: 1, done: 2 });
    await expectViewsMatchPostgres();
  });

  test("a filtered view pages with its own cursor and never repeats or skips a task", async () => {
    const made: Task[] = [];
    for (let i = 0; i < 9; i++) made.push(await create(`task ${i}`, { done: i % 3 === 0 }));
    const open = made.filter((t) => !t.done).map((t) => t.id).reverse();
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await list(`?status=open&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.tasks.length).toBeLessThanOrEqual(2);
      seen.push(...page.tasks.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(open);
  });

  test("dueOn: accepted on create and PATCH, cleared with null, and sort=due orders by date then id with undated last", async () => {
    const late = await create("late", { dueOn: "2031-05-02" });
    const undated = await create("undated");
    const early = await create("early", { dueOn: "2030-01-15" });
    const sameDay = await create("same day as late", { dueOn: "2031-05-02", done: true });
    expect(late.dueOn).toBe("2031-05-02");
    expect(undated.dueOn).toBeNull();
    expect(await ids("?sort=due")).toEqual([early.id, late.id, sameDay.id, undated.id]);
    expect(await ids("?sort=due&status=open")).toEqual([early.id, late.id, undated.id]);
    expect(await ids("?sort=due&status=done")).toEqual([sameDay.id]);
    // Moving a date re-sorts; clearing it sends the task last.
    const moved = (await (await patch(undated.id, { dueOn: "2029-12-31" })).json()) as Task;
    expect(moved).toMatchObject({ dueOn: "2029-12-31", version: 2, title: "undated" });
    expect(await ids("?sort=due")).toEqual([undated.id, early.id, late.id, sameDay.id]);
    const cleared = (await (await patch(early.id, { dueOn: null })).json()) as Task;
    expect(cleared.dueOn).toBeNull();
    expect(await ids("?sort=due")).toEqual([undated.id, late.id, sameDay.id, early.id]);
    // Paging the due order: positions continue after the last one, across dated and undated tasks.
    const first = await list("?sort=due&limit=3");
    expect(first.tasks.map((t) => t.id)).toEqual([undated.id, late.id, sameDay.id]);
    expect((await list(`?sort=due&limit=3&cursor=${first.nextCursor}`)).tasks.map((t) => t.id)).toEqual([early.id]);
    // The same from Postgres alone (what a read without the cache serves).
    expect((await queries.listTasks(store.database.db, { userId, sort: "due", after: Number(first.nextCursor), limit: 10 })).map((t) => t.id)).toEqual([early.id]);
    await expectViewsMatchPostgres();
  });

  test.each<[unknown, string]>([
    ["2026-02-30", "not a real date"],
    ["2026-13-01", "no such month"],
    ["1999-12-31", "before 2000"],
    ["2101-01-01", "after 2100"],
    ["2026-1-5", "not zero-padded"],
    ["20260105", "no dashes"],
    [20260105, "a number"],
    ["", "empty"],
    ["2026-01-05T00:00:00Z", "a timestamp"],
  ])("dueOn %j (%s) is 400 validation_failed naming dueOn, and nothing is written", async (dueOn) => {
    const res = await createTask(mine, jsonRequest("POST", "/api/tasks", { title: "bad date", dueOn }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; issues: Array<{ path: string }> } };
    expect(body.error.code).toBe("validation_failed");
    expect(body.error.issues.map((i) => i.path)).toContain("dueOn");
    const t = await create("dated later");
    expect((await patch(t.id, { dueOn })).status).toBe(400);
    expect((await list()).tasks).toEqual([t]);
  });

  test("2000-01-01, 2100-12-31 and 29 February of a leap year are accepted", async () => {
    for (const dueOn of ["2000-01-01", "2100-12-31", "2028-02-29"]) expect((await create(`due ${dueOn}`, { dueOn })).dueOn).toBe(dueOn);
    expect((await createTask(mine, jsonRequest("POST", "/api/tasks", { title: "x", dueOn: "2027-02-29" }))).status).toBe(400);
  });

  test("status and sort values outside the documented ones are 400 and name the parameter", async () => {
    for (const query of ["?status=closed", "?status=", "?sort=old", "?sort=DUE"]) {
      const res = await listTasks(mine, rawRequest("GET", `/api/tasks${query}`));
      expect(res.status, query).toBe(400);
      const body = (await res.json()) as { error: { issues: Array<{ path: string }> } };
      expect(body.error.issues[0]?.path).toBe(query.startsWith("?status") ? "status" : "sort");
    }
  });

  test("deleted tasks are in no view and no count; a restore puts them back in the right ones", async () => {
    const a = await create("a", { done: true, dueOn: "2030-03-03" });
    const b = await create("b");
    await tasksOf().remove({ id: a.id });
    expect(await ids("?status=done")).toEqual([]);
    expect(await ids("?sort=due")).toEqual([b.id]);
    expect((await list()).counts).toEqual({ all: 1, open: 1, done: 0 });
    const back = await tasksOf().restore(a.id);
    expect(back).toMatchObject({ id: a.id, version: a.version + 2, done: true, dueOn: "2030-03-03" });
    expect(await ids("?status=done&sort=due")).toEqual([a.id]);
    expect((await list()).counts).toEqual({ all: 2, open: 1, done: 1 });
    await expectViewsMatchPostgres();
  });

  test("batch complete and reopen: 200 with every named task as it now is; only the changed ones get a new version", async () => {
    const a = await create("a");
    const b = await create("b", { done: true });
    const c = await create("c");
    const res = await batch({ op: "complete", ids: [a.id, b.id, c.id, a.id] });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { tasks: Task[] };
    expect(body.tasks.map((t) => [t.id, t.done, t.version])).toEqual([
      [c.id, true, 2],
      [b.id, true, 1],
      [a.id, true, 2],
    ]);
    expect((await list()).counts).toEqual({ all: 3, open: 0, done: 3 });
    const reopened = (await (await batch({ op: "reopen", ids: [c.id] })).json()) as { tasks: Task[] };
    expect(reopened.tasks).toEqual([expect.objectContaining({ id: c.id, done: false, version: 3 })]);
    expect(await ids("?status=open")).toEqual([c.id]);
    await expectViewsMatchPostgres();
  });

  test("batch delete answers the ids; batch restore gives them back, same ids, next versions", async () => {
    const a = await create("a");
    const b = await create("b", { done: true });
    const del = await batch({ op: "delete", ids: [a.id, b.id] });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ ids: [b.id, a.id] });
    expect(await ids()).toEqual([]);
    expect((await list()).counts).toEqual({ all: 0, open: 0, done: 0 });
    const restored = (await (await batch({ op: "restore", ids: [a.id, b.id] })).json()) as { tasks: Task[] };
    expect(restored.tasks.map((t) => [t.id, t.version, t.done])).toEqual([
      [b.id, 3, true],
      [a.id, 3, false],
    ]);
    expect(await ids()).toEqual([b.id, a.id]);
    await expectViewsMatchPostgres();
  });

  test("a batch naming any id that isn't the caller's live task is 404 naming none, and changes nothing", async () => {
    const a = await create("mine");
    const gone = await create("deleted");
    await tasksOf().remove({ id: gone.id });
    const stranger = await env.createUser("stranger");
    const theirs = await store.forUser(stranger).create({ title: "theirs" });
    for (const ids of [[a.id, theirs.id], [a.id, 2_147_483_647], [a.id, gone.id]]) {
      for (const op of ["complete", "delete"]) {
        const res = await batch({ op, ids });
        expect(res.status, `${op} ${ids.join(",")}`).toBe(404);
        const text = await res.text();
        expect(text).toContain("not_found");
        for (const id of ids.slice(1)) expect(text).not.toContain(String(id));
      }
    }
    expect(await queries.getTaskById(store.database.db, { userId, id: a.id })).toEqual(a);
    expect(await queries.getTaskById(store.database.db, { userId: stranger, id: theirs.id })).toEqual(theirs);
    expect((await list()).tasks).toEqual([a]);
  });

  test("a batch restore naming a live task is 409, of a purged or foreign one 404; neither changes anything", async () => {
    const live = await create("live");
    const gone = await create("gone");
    await tasksOf().remove({ id: gone.id });
    expect((await batch({ op: "restore", ids: [gone.id, live.id] })).status).toBe(409);
    expect(await ids()).toEqual([live.id]);
    const purged = await create("purged");
    await tasksOf().remove({ id: purged.id });
    await store.database.db.delete(tasksTable).where(eq(tasksTable.id, purged.id));
    expect((await batch({ op: "restore", ids: [gone.id, purged.id] })).status).toBe(404);
    expect(await ids()).toEqual([live.id]);
    await expectViewsMatchPostgres();
  });

  test("batch bodies: op and ids are checked (1..500 integer ids), with clear 400s", async () => {
    const a = await create("a");
    const bad: unknown[] = [
      { op: "complete" },
      { op: "complete", ids: [] },
      { op: "complete", ids: Array.from({ length: 501 }, (_, i) => i + 1) },
      { op: "complete", ids: ["1"] },
      { op: "complete", ids: [0] },
      { op: "complete", ids: [1.5] },
      { op: "finish", ids: [a.id] },
      { op: "complete", ids: [a.id], extra: true },
      [a.id],
    ];
    for (const body of bad) {
      const res = await batch(body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("validation_failed");
    }
    expect((await list()).tasks).toEqual([a]);
    // 500 ids is the limit, not past it: here all unknown, so 404.
    expect((await batch({ op: "complete", ids: Array.from({ length: 500 }, (_, i) => 2_000_000_000 + i) })).status).toBe(404);
  });

  test("a batch retried with its Idempotency-Key answers the first result, marked as a replay, and changes nothing more", async () => {
    const a = await create("a");
    const first = await batch({ op: "complete", ids: [a.id] }, { "idempotency-key": "batch-1" });
    expect(first.status).toBe(200);
    const firstBody = await first.json();
    await patch(a.id, { done: false });
    const again = await batch({ op: "complete", ids: [a.id] }, { "idempotency-key": "batch-1" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(firstBody);
    // The reopen after it stands: the replay wrote nothing, and the cache agrees with Postgres.
    expect((await tasksOf().get(a.id)).task).toMatchObject({ done: false, version: 3 });
    expect((await batch({ op: "reopen", ids: [a.id] }, { "idempotency-key": "batch-1" })).status).toBe(422);
    await expectViewsMatchPostgres();
  });

  test("a batch of 500 is one Postgres transaction and one cache script call", async () => {
    const made = await Promise.all(Array.from({ length: 500 }, (_, i) => queries.insertTask(store.database.db, { userId, title: `bulk ${i}`, done: false })));
    await list(); // builds the views
    const calls: string[] = [];
    const off = store.cache?.onCall((operation) => calls.push(operation));
    const before = store.database.statements.transactions;
    const res = await batch({ op: "complete", ids: made.map((t) => t.id) });
    off?.();
    expect(res.status).toBe(200);
    expect(store.database.statements.transactions - before).toBe(1);
    if (store.cache) expect(calls.filter((c) => c !== "epoch")).toEqual(["writeTasks"]);
    expect((await list("?status=done&limit=1")).counts).toEqual({ all: 500, open: 0, done: 500 });
    await expectViewsMatchPostgres();
  });
});
