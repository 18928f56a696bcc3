import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tasks } from "@/lib/db/schema";
import { claimUnownedTasks, listCacheRepairs } from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, testWhere, type TestEnv } from "../support/backends";
import { freePort } from "../support/redisServer";

const run = promisify(execFile);

// Tasks from before accounts existed keep a null owner through the migration: nobody sees them,
// nothing is lost, and `npm run tasks:claim -- --email <e>` gives them to one account.
describe.each(BACKENDS.filter((b) => b.cacheDriver !== "upstash"))("claiming tasks from before accounts on $name", (backend) => {
  let env: TestEnv;
  let store: TaskStore;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    store = await env.openStore();
  });
  afterAll(async () => {
    await env.cleanup();
  });

  const insertUnowned = async (...titles: string[]) =>
    (await store.database.db.insert(tasks).values(titles.map((title) => ({ title }))).returning({ id: tasks.id })).map((r) => r.id);

  test("unowned tasks are visible to no one until claimed, then only to the claimant", async () => {
    const claimant = await env.createUser("claimant");
    const other = await env.createUser("other");
    const alice = store.forUser(claimant);
    const bob = store.forUser(other);
    const own = await alice.create({ title: "already alice's" });
    await alice.list({ limit: 50 }); // her list index is built without the old tasks
    // Rows as the migration left them: no owner.
    const oldIds = await insertUnowned("from before accounts 1", "from before accounts 2");
    expect(oldIds).toHaveLength(2);
    for (const who of [alice, bob]) {
      await expect(who.get(oldIds[0]!)).rejects.toMatchObject({ code: "not_found" });
      expect((await who.list({ limit: 50 })).tasks.map((t) => t.id)).not.toContain(oldIds[0]);
    }

    expect(await claimUnownedTasks(store.database.db, { email: "nobody@example.test" })).toBeNull();
    const result = await claimUnownedTasks(store.database.db, { email: `claimant-${claimant}@example.test` });
    expect(result).toEqual({ userId: claimant, claimed: 2 });
    // The claim committed a repair that marks her list index dirty; the server's next pass drops it.
    expect(await listCacheRepairs(store.database.db, { limit: 10, userId: claimant })).toEqual([
      expect.objectContaining({ kind: "task", taskId: Math.max(...oldIds), indexDirty: true }),
    ]);
    await store.repairNow();

    expect((await alice.list({ limit: 50 })).tasks.map((t) => t.id)).toEqual([...oldIds, own.id].sort((a, b) => b - a));
    expect((await alice.get(oldIds[1]!)).task.title).toBe("from before accounts 2");
    await expect(bob.get(oldIds[1]!)).rejects.toMatchObject({ code: "not_found" });
    expect(await listCacheRepairs(store.database.db, { limit: 10, userId: claimant })).toEqual([]);
    // Claiming again finds nothing left to claim, and records nothing.
    expect(await claimUnownedTasks(store.database.db, { email: `claimant-${claimant}@example.test` })).toEqual({ userId: claimant, claimed: 0 });
    expect(await listCacheRepairs(store.database.db, { limit: 10, userId: claimant })).toEqual([]);
  });

  testWhere(backend.cacheDriver === "redis")(
    "a claim run while the cache is unreachable succeeds, and the servers list the claimed tasks",
    async () => {
      const owner = await env.createUser("offline");
      const server = await env.openStore(); // a running app instance, on the real cache
      const mine = server.forUser(owner);
      const own = await mine.create({ title: "already mine" });
      expect((await mine.list({ limit: 50 })).tasks.map((t) => t.id)).toEqual([own.id]); // index built, cached
      const oldIds = await insertUnowned("old 1", "old 2", "old 3");

      // As `npm run tasks:claim` runs it: lib/ resolves `server-only` under the react-server condition.
      const { stdout, stderr } = await run(path.resolve("node_modules/.bin/tsx"), ["--conditions=react-server", "scripts/claim-tasks.ts", "--email", `offline-${owner}@example.test`], {
        env: {
          ...process.env,
          DATABASE_URL: env.databaseUrl,
          CACHE_DRIVER: "redis",
          REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
          CACHE_PREFIX: env.prefix,
          CACHE_TIMEOUT_MS: "200",
          CACHE_REPAIR_INTERVAL_MS: "0",
        },
        timeout: 30_000,
      }); // rejects on a non-zero exit
      expect(stdout).toContain("gave 3 task(s)");
      expect(stderr).toMatch(/warning: the cache could not be reached/);
      expect(stderr).not.toMatch(/claim failed/);

      await server.repairNow(); // what its repair timer does every CACHE_REPAIR_INTERVAL_MS
      const page = await mine.list({ limit: 50 });
      expect(page.tasks.map((t) => t.id)).toEqual([...oldIds, own.id].sort((a, b) => b - a));
      expect((await server.audit(owner)).ok).toBe(true);
    },
  );
});
