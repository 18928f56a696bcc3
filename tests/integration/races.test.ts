import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as queries from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";

/**
 * The two defects of the reference design, as deterministic acceptance tests: concurrent PATCHes
 * left cache and Postgres disagreeing (7 of 30 rounds), and PATCH racing DELETE left a ghost task
 * cached for ever (18 of 200 rounds). Writers are spread over two store instances with their own
 * Postgres pools and cache connections, as two app servers would be.
 */
describe.each(BACKENDS)("write races on $name", (backend) => {
  let env: TestEnv;
  let stores: TaskStore[];

  beforeAll(async () => {
    env = await createTestEnv(backend);
    stores = [await env.openStore(), await env.openStore()];
  });
  afterAll(async () => {
    await env.cleanup();
  });

  const storeFor = (i: number) => (stores[i % stores.length] as TaskStore).forUser(env.userId);
  const db = () => (stores[0] as TaskStore).database.db;

  test("16 concurrent PATCHes of one task, 30 rounds: the cache always ends equal to Postgres", async () => {
    const disagreements: string[] = [];
    for (let round = 0; round < 30; round++) {
      const task = await storeFor(round).create({ title: `race ${round}` });
      await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          storeFor(i).update({ id: task.id, patch: i % 2 === 0 ? { title: `race ${round} by writer ${i}` } : { done: i % 4 === 1 } }),
        ),
      );
      const truth = await queries.getTaskById(db(), { userId: env.userId, id: task.id });
      for (const store of stores) {
        const cached = await store.cache?.driver.forUser(env.userId).getTask(task.id);
        if (cached && JSON.stringify(cached) !== JSON.stringify({ state: "hit", task: truth })) {
          disagreements.push(`round ${round}: cache ${JSON.stringify(cached)} vs postgres v${truth?.version}`);
        }
      }
      expect(truth?.version).toBe(17);
    }
    expect(disagreements).toEqual([]);
  });

  test("8 PATCHes racing 1 DELETE, 200 rounds: never a cached task that Postgres no longer has", async () => {
    const ghosts: string[] = [];
    for (let round = 0; round < 200; round++) {
      const task = await storeFor(round).create({ title: `ghost hunt ${round}` });
      await storeFor(round + 1).get(task.id); // warm
      const deleteAt = round % 9;
      await Promise.allSettled(
        Array.from({ length: 9 }, (_, i) =>
          i === deleteAt
            ? storeFor(i).remove({ id: task.id })
            : storeFor(i).update({ id: task.id, patch: { title: `ghost hunt ${round} writer ${i}` } }),
        ),
      );
      expect(await queries.getTaskById(db(), { userId: env.userId, id: task.id })).toBeUndefined();
      for (const [n, store] of stores.entries()) {
        const cached = await store.cache?.driver.forUser(env.userId).getTask(task.id);
        if (cached?.state === "hit") ghosts.push(`round ${round}: store ${n} caches v${cached.task.version}`);
        const read = await store.forUser(env.userId).get(task.id).catch((e: { code?: string }) => e.code);
        if (read !== "not_found") ghosts.push(`round ${round}: store ${n} get() answered ${JSON.stringify(read)}`);
      }
    }
    expect(ghosts).toEqual([]);
    // The list cache, written through by the deletes, holds none of them either.
    const page = await storeFor(0).list({ limit: 200 });
    expect(page.tasks.filter((t) => t.title.startsWith("ghost hunt"))).toEqual([]);
  });
});
