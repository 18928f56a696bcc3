import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TaskError } from "@/lib/tasks/errors";
import type { UserTaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";

describe.each(BACKENDS)("task store on $name", (backend) => {
  let env: TestEnv;
  let store: UserTaskStore;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    store = (await env.openStore()).forUser(env.userId);
  });
  afterAll(async () => {
    await env.cleanup();
  });

  test("create() writes Postgres and the cache, so the next get() is a HIT at the same version", async () => {
    const created = await store.create({ title: "write me through" });
    expect(created).toMatchObject({ title: "write me through", done: false, version: 1 });
    const read = await store.get(created.id);
    expect(read).toEqual({ task: created, cache: "HIT" });
  });

  test("update() bumps the version and the cache serves the new title at once", async () => {
    const created = await store.create({ title: "before" });
    const updated = await store.update({ id: created.id, patch: { title: "after", done: true } });
    expect(updated).toMatchObject({ id: created.id, title: "after", done: true, version: 2 });
    expect(await store.get(created.id)).toEqual({ task: updated, cache: "HIT" });
  });

  test("a missing id is negatively cached: 100 reads of it cost one Postgres query, and the next create of that id is served", async () => {
    const shared = store.store;
    if (!shared.cache) return;
    const last = await store.create({ title: "the newest before the miss" });
    const next = last.id + 1; // this test database's next id: nothing else creates here meanwhile
    const before = shared.stats.dbQueries;
    for (let i = 0; i < 100; i++) await expect(store.get(next)).rejects.toMatchObject({ code: "not_found" });
    expect(shared.stats.dbQueries - before).toBe(1);
    const created = await store.create({ title: "created after its id was missing" });
    expect(created.id).toBe(next);
    expect(await store.get(next)).toEqual({ task: created, cache: "HIT" });
    expect((await store.list({ limit: 5 })).tasks[0]).toEqual(created);
  });

  test("a negative entry that loses the race to a create is refused: the create is never hidden", async () => {
    let release!: () => void;
    let paused!: () => void;
    const atFill = new Promise<void>((r) => (paused = r));
    const gate = new Promise<void>((r) => (release = r));
    const hooked = (await env.openStore({ hooks: { beforeFill: async () => (paused(), gate) } })).forUser(env.userId);
    if (!hooked.store.cache) return;
    const last = await store.create({ title: "before the race" });
    const racing = hooked.get(last.id + 1).catch((e: unknown) => e);
    await atFill; // the miss read Postgres (nothing there yet) and waits before writing its negative entry
    const created = await store.create({ title: "created during the miss" });
    release();
    expect(await racing).toMatchObject({ code: "not_found" });
    expect(await store.get(created.id)).toEqual({ task: created, cache: "HIT" });
    expect(await hooked.get(created.id)).toEqual({ task: created, cache: "HIT" });
  });

  test("a second store instance sees a write from the first (shared cache)", async () => {
    const other = (await env.openStore()).forUser(env.userId);
    const created = await store.create({ title: "seen elsewhere" });
    const updated = await store.update({ id: created.id, patch: { title: "seen elsewhere, v2" } });
    expect((await other.get(created.id)).task).toEqual(updated);
  });

  test("remove() leaves a tombstone: get() is not_found from the cache, and the list omits it", async () => {
    const created = await store.create({ title: "doomed" });
    await store.list({ limit: 200 });
    await store.remove({ id: created.id });
    await expect(store.get(created.id)).rejects.toMatchObject({ code: "not_found" });
    const page = await store.list({ limit: 200 });
    expect(page.tasks.map((t) => t.id)).not.toContain(created.id);
  });

  test("list() is a MISS when cold, then a HIT, and stays a HIT through creates, updates and deletes", async () => {
    const a = await store.create({ title: "list a" });
    await store.list({ limit: 5 });
    const warm = await store.list({ limit: 5 });
    expect(warm.cache).toBe("HIT");
    const b = await store.create({ title: "list b" });
    await store.update({ id: a.id, patch: { title: "list a, renamed" } });
    const after = await store.list({ limit: 200 });
    expect(after.cache).toBe("HIT");
    expect(after.tasks[0]).toEqual(b);
    expect(after.tasks.find((t) => t.id === a.id)?.title).toBe("list a, renamed");
    await store.remove({ id: b.id });
    const afterDelete = await store.list({ limit: 200 });
    expect(afterDelete.cache).toBe("HIT");
    expect(afterDelete.tasks.map((t) => t.id)).not.toContain(b.id);
  });

  test("update() with a stale expectedVersion is precondition_failed and changes nothing", async () => {
    const created = await store.create({ title: "guarded" });
    await store.update({ id: created.id, patch: { done: true } });
    const err = await store.update({ id: created.id, patch: { title: "lost update" }, expectedVersion: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).code).toBe("precondition_failed");
    expect((await store.get(created.id)).task).toMatchObject({ title: "guarded", version: 2 });
  });

  test("another user's task answers exactly like a missing one, and never enters their list", async () => {
    const mallory = (await env.openStore()).forUser(await env.createUser("mallory"));
    const mine = await store.create({ title: "mine alone" });
    await store.list({ limit: 200 });
    const missing = mine.id + 1_000_000;
    const errorOf = (p: Promise<unknown>) => p.then(() => null, (e: TaskError) => ({ code: e.code, message: e.message.replace(/\d+/, "ID") }));
    for (const attempt of [
      () => mallory.get(mine.id),
      () => mallory.update({ id: mine.id, patch: { title: "taken over" } }),
      () => mallory.update({ id: mine.id, patch: { done: true }, expectedVersion: 1 }),
      () => mallory.remove({ id: mine.id }),
      () => mallory.remove({ id: mine.id, expectedVersion: 1 }),
    ]) {
      const theirs = await errorOf(attempt());
      expect(theirs).toEqual({ code: "not_found", message: "Task ID does not exist." });
    }
    expect(await errorOf(mallory.get(missing))).toEqual({ code: "not_found", message: "Task ID does not exist." });
    expect((await mallory.list({ limit: 200 })).tasks.map((t) => t.id)).not.toContain(mine.id);
    // Nothing the other user tried changed the task, in Postgres or in the cache.
    expect(await store.get(mine.id)).toEqual({ task: mine, cache: "HIT" });
  });

  test("each user's list holds only their own tasks, newest first", async () => {
    const alice = (await env.openStore()).forUser(await env.createUser("alice"));
    const bob = (await env.openStore()).forUser(await env.createUser("bob"));
    const a1 = await alice.create({ title: "alice 1" });
    const b1 = await bob.create({ title: "bob 1" });
    const a2 = await alice.create({ title: "alice 2" });
    expect((await alice.list({ limit: 10 })).tasks.map((t) => t.id)).toEqual([a2.id, a1.id]);
    expect((await bob.list({ limit: 10 })).tasks.map((t) => t.id)).toEqual([b1.id]);
    await bob.remove({ id: b1.id });
    expect((await bob.list({ limit: 10 })).tasks).toEqual([]);
    expect((await alice.list({ limit: 10 })).tasks.map((t) => t.id)).toEqual([a2.id, a1.id]);
  });
});
