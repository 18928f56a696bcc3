import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as queries from "@/lib/tasks/queries";
import type { Task } from "@/lib/tasks/schema";
import type { StoreTestHooks, UserTaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { gate } from "../support/gate";

/**
 * Each race of a write-through cache, forced to happen with the store's test hooks, on two store
 * instances as two app servers. Each ends with the cache equal to Postgres.
 */
describe.each(BACKENDS)("forced interleavings on $name", (backend) => {
  let env: TestEnv;
  let writer: UserTaskStore;
  const open = async (hooks?: StoreTestHooks) => (await env.openStore({ hooks })).forUser(env.userId);

  beforeAll(async () => {
    env = await createTestEnv(backend);
    writer = await open();
  });
  afterAll(async () => {
    await env.cleanup();
  });

  /** A task that exists in Postgres but not in the cache (created around the store). */
  const uncached = (title: string) => queries.insertTask(writer.store.database.db, { userId: env.userId, title, done: false });

  async function expectCacheEqualsPostgres(store: UserTaskStore, id: number) {
    const row = await queries.getTaskById(store.store.database.db, { userId: store.userId, id });
    const entry = await store.store.cache?.driver.forUser(store.userId).getTask(id);
    if (row) expect(entry).toEqual({ state: "hit", task: row });
    else expect(entry?.state === "hit").toBe(false);
  }

  test("a miss-fill that read Postgres before an update committed, and fills after it, is refused", async () => {
    const task = await uncached("fill vs update");
    const g = gate();
    const reader = await open({ beforeFill: () => g.wait() });
    const read = reader.get(task.id);
    await g.reached(); // the reader holds v1 from Postgres
    const updated = await writer.update({ id: task.id, patch: { title: "fill vs update, v2" } });
    g.open();
    const result = await read;
    // Its fill was refused because the cache already held v2, and that newer state is the answer.
    expect(result).toEqual({ task: updated, cache: "MISS" });
    await expectCacheEqualsPostgres(writer, task.id);
    expect((await writer.get(task.id)).task).toEqual(updated);
  });

  test("a restore outranks a slow miss-fill that read the task before its delete: the restored version stays cached", async () => {
    const task = await uncached("fill vs delete and restore");
    const g = gate();
    const reader = await open({ beforeFill: () => g.wait() });
    const read = reader.get(task.id);
    await g.reached(); // the reader holds v1, read before the delete
    await writer.remove({ id: task.id });
    const restored = await writer.restore(task.id);
    expect(restored.version).toBe(3);
    g.open();
    // Its v1 fill is refused by the restored v3; the newer state is the answer.
    expect(await read).toEqual({ task: restored, cache: "MISS" });
    await expectCacheEqualsPostgres(writer, task.id);
    expect(await writer.get(task.id)).toEqual({ task: restored, cache: "HIT" });
    expect((await writer.list({ limit: 200 })).tasks.map((t) => t.id)).toContain(task.id);
  });

  test("a miss-fill racing a delete cannot resurrect the task (tombstone)", async () => {
    const task = await uncached("fill vs delete");
    const g = gate();
    const reader = await open({ beforeFill: () => g.wait() });
    const read = reader.get(task.id);
    await g.reached();
    await writer.remove({ id: task.id });
    g.open();
    // Its fill was refused by the tombstone, and the tombstone is the answer: not found.
    await expect(read).rejects.toMatchObject({ code: "not_found" });
    await expectCacheEqualsPostgres(writer, task.id);
    await expect(writer.get(task.id)).rejects.toMatchObject({ code: "not_found" });
    await expect(reader.get(task.id)).rejects.toMatchObject({ code: "not_found" });
  });

  test("a miss-fill racing a delete and a cache flush cannot resurrect the task (epoch)", async () => {
    const task = await uncached("fill vs delete vs flush");
    const g = gate();
    const reader = await open({ beforeFill: () => g.wait() });
    const read = reader.get(task.id);
    await g.reached();
    await writer.remove({ id: task.id });
    await writer.store.cache?.driver.flush(); // the tombstone is gone with everything else
    g.open();
    // Its fill carried the epoch from before the flush, so it was refused and Postgres read again: gone.
    await expect(read).rejects.toMatchObject({ code: "not_found" });
    await expectCacheEqualsPostgres(writer, task.id);
    await expect(reader.get(task.id)).rejects.toMatchObject({ code: "not_found" });
  });

  test("two write-throughs whose cache writes arrive in reverse commit order leave the newer one", async () => {
    const task = await writer.create({ title: "reverse order" });
    const g = gate();
    const slow = await open({ beforeWriteThrough: () => g.wait() });
    const first = slow.update({ id: task.id, patch: { title: "reverse order, first commit" } });
    await g.reached(); // v2 committed, its cache write held back
    const second = await writer.update({ id: task.id, patch: { title: "reverse order, second commit" } });
    g.open();
    expect((await first).version).toBe(2);
    expect(second.version).toBe(3);
    await expectCacheEqualsPostgres(writer, task.id);
    expect((await slow.get(task.id)).task).toEqual(second);
  });

  test("a cold list build racing a create and a delete publishes exactly what Postgres has", async () => {
    await writer.store.cache?.driver.forUser(env.userId).dropIndex();
    const doomed = await writer.create({ title: "in the snapshot, deleted during the build" });
    const g = gate();
    const builder = await open({ beforeIndexPublish: () => g.wait() });
    const listing = builder.list({ limit: 200 });
    await g.reached(); // the build has read its snapshot of ids
    const born = await writer.create({ title: "created during the build" });
    await writer.remove({ id: doomed.id });
    g.open();
    const built = await listing;
    const indexed = await writer.store.cache?.driver.forUser(env.userId).readIndex().then((i) => i && i.views["all:new"]);
    const truth = await queries.listAllTaskIds(writer.store.database.db, { userId: env.userId });
    expect(indexed).toEqual(truth);
    const page = await writer.list({ limit: 200 });
    expect(page.cache).toBe("HIT");
    const ids = page.tasks.map((t: Task) => t.id);
    expect(ids).toContain(born.id);
    expect(ids).not.toContain(doomed.id);
    // The builder's own answer came from the index it published: the same page, filled as it read.
    expect(built).toEqual({ ...page, cache: "MISS" });
    expect((await writer.store.audit(env.userId)).ok).toBe(true);
  });

  /** Each view of the user's tasks, as the cache's views hold them, equals the same view in Postgres. */
  async function expectViewsEqualPostgres() {
    const snapshot = await writer.store.cache?.driver.forUser(env.userId).readIndex();
    if (!writer.store.cache) return;
    expect(snapshot, "complete views").not.toBeNull();
    for (const status of ["all", "open", "done"] as const) {
      for (const sort of ["new", "due"] as const) {
        const truth = (await queries.listTasks(writer.store.database.db, { userId: env.userId, status, sort, limit: 1000 })).map((t) => t.id);
        expect(snapshot?.views[`${status}:${sort}`], `${status}:${sort}`).toEqual(truth);
      }
    }
  }

  test("a status change racing a views build: the build's older row can't put the task back in its old view", async () => {
    await writer.store.cache?.driver.forUser(env.userId).dropIndex();
    const task = await writer.create({ title: "open in the snapshot, done during the build", dueOn: "2031-01-01" });
    const g = gate();
    const builder = await open({ beforeIndexPublish: () => g.wait() });
    const listing = builder.list({ limit: 200, status: "open" });
    await g.reached(); // the build has read the task as open, v1
    const done = await writer.update({ id: task.id, patch: { done: true, dueOn: "2030-06-01" } });
    g.open();
    const built = await listing;
    expect(built.tasks.map((t) => t.id)).not.toContain(task.id);
    const doneView = await writer.list({ limit: 200, status: "done", sort: "due" });
    expect(doneView.cache).toBe("HIT");
    expect(doneView.tasks).toContainEqual(done);
    await expectViewsEqualPostgres();
    expect((await writer.store.audit(env.userId)).ok).toBe(true);
  });

  test("a batch whose write-through lands after a later single write leaves the later state, in the entry and in every view", async () => {
    const [a, b] = [await writer.create({ title: "batched a" }), await writer.create({ title: "batched b" })];
    await writer.list({ limit: 200 }); // complete views
    const g = gate();
    const slow = await open({ beforeWriteThrough: () => g.wait() });
    const batch = slow.batch({ op: "complete", ids: [a.id, b.id] });
    await g.reached(); // both completed in Postgres (v2), the cache write held back
    const reopened = await writer.update({ id: a.id, patch: { done: false } }); // v3, written through first
    g.open();
    const result = await batch;
    expect("tasks" in result && result.tasks.map((t) => [t.id, t.version, t.done])).toEqual([
      [b.id, 2, true],
      [a.id, 2, true],
    ]);
    await expectCacheEqualsPostgres(writer, a.id);
    await expectCacheEqualsPostgres(writer, b.id);
    expect((await writer.get(a.id)).task).toEqual(reopened);
    const open_ = (await writer.list({ limit: 200, status: "open" })).tasks.map((t) => t.id);
    expect(open_).toContain(a.id);
    expect(open_).not.toContain(b.id);
    await expectViewsEqualPostgres();
  });

  test("a restore racing a views build puts the task back in its views, whichever lands first", async () => {
    const task = await writer.create({ title: "deleted before the build, restored during it", dueOn: "2032-02-02" });
    await writer.remove({ id: task.id });
    await writer.store.cache?.driver.forUser(env.userId).dropIndex();
    const g = gate();
    const builder = await open({ beforeIndexPublish: () => g.wait() });
    const listing = builder.list({ limit: 200, sort: "due" });
    await g.reached(); // the build's snapshot has no such task
    const restored = await writer.restore(task.id);
    g.open();
    await listing;
    expect((await writer.list({ limit: 200, sort: "due" })).tasks).toContainEqual(restored);
    await expectViewsEqualPostgres();
  });
});
