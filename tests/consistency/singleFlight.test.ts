import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as queries from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { gate } from "../support/gate";

/** Invariant 7: concurrent misses on one key cost one Postgres query per store instance. */
describe.each(BACKENDS)("single flight on $name", (backend) => {
  let env: TestEnv;
  let stores: TaskStore[];

  beforeAll(async () => {
    env = await createTestEnv(backend);
    stores = [await env.openStore(), await env.openStore()];
    for (let i = 0; i < 120; i++) await queries.insertTask(stores[0]!.database.db, { userId: env.userId, title: `seed ${i}`, done: false });
    // Learn the cache epoch now, so only the reads under test reach the database.
    for (const s of stores) await s.forUser(env.userId).create({ title: "warm-up" });
  });
  afterAll(async () => {
    await env.cleanup();
  });

  test("200 concurrent reads of one cold task cost exactly one Postgres query on each of two instances", async () => {
    // Both instances must miss: each one's fill waits until the other has read Postgres too, so
    // neither can find the other's fill in the cache (which would cost it no query at all).
    const gates = [gate(), gate()];
    const pair = [await env.openStore({ hooks: { beforeFill: () => gates[0]!.wait() } }), await env.openStore({ hooks: { beforeFill: () => gates[1]!.wait() } })];
    for (const s of pair) await s.forUser(env.userId).create({ title: "warm-up" });
    const task = await queries.insertTask(pair[0]!.database.db, { userId: env.userId, title: "cold task", done: false });
    const before = pair.map((s) => s.stats.dbQueries);
    const reads = Promise.all(pair.flatMap((s) => Array.from({ length: 200 }, () => s.forUser(env.userId).get(task.id))));
    await Promise.all(gates.map((g) => g.reached()));
    for (const g of gates) g.open();
    const results = await reads;
    expect(results.every((r) => r.task.id === task.id && r.task.version === 1)).toBe(true);
    expect(pair.map((s, i) => s.stats.dbQueries - (before[i] as number))).toEqual([1, 1]);
  });

  test("200 concurrent reads of one cold task on one instance cost exactly one Postgres query", async () => {
    const task = await queries.insertTask(stores[0]!.database.db, { userId: env.userId, title: "cold task, one instance", done: false });
    const store = stores[1]!;
    const before = store.stats.dbQueries;
    await Promise.all(Array.from({ length: 200 }, () => store.forUser(env.userId).get(task.id)));
    expect(store.stats.dbQueries - before).toBe(1);
  });

  test("200 concurrent reads of the cold list on one instance cost exactly one Postgres query", async () => {
    const store = stores[0]!;
    await store.cache?.driver.forUser(env.userId).dropIndex();
    const before = store.stats.dbQueries;
    const pages = await Promise.all(Array.from({ length: 200 }, () => store.forUser(env.userId).list({ limit: 50 })));
    expect(store.stats.dbQueries - before).toBe(1);
    const first = JSON.stringify(pages[0]?.tasks);
    expect(pages.every((p) => JSON.stringify(p.tasks) === first && p.tasks.length === 50)).toBe(true);
  });
});
