import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { auditCache } from "@/lib/http/opsHandlers";
import * as queries from "@/lib/tasks/queries";
import type { TaskStore, UserTaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";

describe.each(BACKENDS)("cache audit on $name", (backend) => {
  let env: TestEnv;
  let engine: TaskStore;
  let store: UserTaskStore;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    engine = await env.openStore();
    store = engine.forUser(env.userId);
  });
  const asUser = (userId: string) => ({
    store: async () => engine,
    principal: async () => ({ userId, via: "session" as const, email: `${userId}@example.test` }),
    adminEmails: [],
  });
  afterAll(async () => {
    await env.cleanup();
  });

  test("after ordinary traffic the audit reports every entry checked and no drift", async () => {
    const a = await store.create({ title: "audit a" });
    const b = await store.create({ title: "audit b" });
    await store.list({ limit: 50 });
    await store.update({ id: a.id, patch: { done: true } });
    await store.remove({ id: b.id });
    const report = await engine.audit(env.userId);
    expect(report).toMatchObject({ scope: "user", checked: 2, stale: 0, ghosts: 0, missingFromList: 0, listsChecked: 1, ok: true });
    const res = await auditCache(asUser(env.userId), new Request("http://x/api/cache/audit"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ scope: "user", checked: 2, ok: true });
  });

  test("the audit finds stale entries, ghosts and tasks missing from the list, and the route reports it", async () => {
    const driver = engine.cache?.driver.forUser(env.userId);
    if (!driver) throw new Error("no cache");
    const a = await store.create({ title: "will drift" });
    await store.list({ limit: 50 });
    // Drift injected behind the store's back: an entry Postgres never had at that version, a
    // cached task Postgres doesn't have, and a row the list index never heard of.
    await driver.putTask({ ...a, version: a.version + 5, title: "not what postgres says" }, await driver.epoch());
    await driver.putTask({ ...a, id: 999_999, title: "ghost" }, await driver.epoch());
    const hidden = await queries.insertTask(engine.database.db, { userId: env.userId, title: "written around the cache", done: false });
    const report = await engine.audit(env.userId);
    expect(report).toMatchObject({ stale: 1, ghosts: 1, missingFromList: 1, ok: false });
    expect(report.findings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: a.id, kind: "stale" }),
        expect.objectContaining({ id: 999_999, kind: "ghost" }),
        expect.objectContaining({ id: hidden.id, kind: "missingFromList" }),
      ]),
    );
    const res = await auditCache(asUser(env.userId), new Request("http://x/api/cache/audit"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: false, stale: 1 });
    // Another user's audit covers only their own slot: none of this drift is theirs.
    const other = await env.createUser("other");
    expect(await engine.audit(other)).toMatchObject({ scope: "user", checked: 0, ok: true });
    // The whole-store audit sees it too.
    expect(await engine.audit()).toMatchObject({ scope: "all", stale: 1, ghosts: 1, missingFromList: 1, ok: false });
  });

  test("a cached copy of another user's task counts as a ghost in that user's slot", async () => {
    const victim = await store.create({ title: "not yours" });
    const intruder = await env.createUser("intruder");
    const slot = engine.cache?.driver.forUser(intruder);
    if (!slot) throw new Error("no cache");
    await slot.putTask(victim, await slot.epoch());
    expect(await engine.audit(intruder)).toMatchObject({ ghosts: 1, ok: false });
    expect((await engine.audit()).findings).toEqual(expect.arrayContaining([expect.objectContaining({ id: victim.id, kind: "ghost" })]));
  });
});
