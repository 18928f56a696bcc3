import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { auditCache } from "@/lib/http/opsHandlers";
import * as queries from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";

describe.each(BACKENDS)("cache audit on $name", (backend) => {
  let env: TestEnv;
  let store: TaskStore;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    store = await env.openStore();
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
    const report = await store.audit();
    expect(report).toMatchObject({ checked: 2, stale: 0, ghosts: 0, missingFromList: 0, listIndexed: true, ok: true });
    const res = await auditCache(async () => store);
    expect(res.status).toBe(200);
  });

  test("the audit finds stale entries, ghosts and tasks missing from the list, and the route reports it", async () => {
    const driver = store.cache?.driver;
    if (!driver) throw new Error("no cache");
    const a = await store.create({ title: "will drift" });
    await store.list({ limit: 50 });
    // Drift injected behind the store's back: an entry Postgres never had at that version, a
    // cached task Postgres doesn't have, and a row the list index never heard of.
    await driver.putTask({ ...a, version: a.version + 5, title: "not what postgres says" }, await driver.epoch());
    await driver.putTask({ ...a, id: 999_999, title: "ghost" }, await driver.epoch());
    const hidden = await queries.insertTask(store.database.db, { title: "written around the cache", done: false });
    const report = await store.audit();
    expect(report).toMatchObject({ stale: 1, ghosts: 1, missingFromList: 1, ok: false });
    expect(report.findings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: a.id, kind: "stale" }),
        expect.objectContaining({ id: 999_999, kind: "ghost" }),
        expect.objectContaining({ id: hidden.id, kind: "missingFromList" }),
      ]),
    );
    const res = await auditCache(async () => store);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: false, stale: 1 });
  });
});
