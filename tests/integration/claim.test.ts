import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tasks } from "@/lib/db/schema";
import { claimUnownedTasks } from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";

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

  test("unowned tasks are visible to no one until claimed, then only to the claimant", async () => {
    const claimant = await env.createUser("claimant");
    const other = await env.createUser("other");
    const alice = store.forUser(claimant);
    const bob = store.forUser(other);
    const own = await alice.create({ title: "already alice's" });
    await alice.list({ limit: 50 }); // her list index is built without the old tasks
    // Rows as the migration left them: no owner.
    const old = await store.database.db.insert(tasks).values([{ title: "from before accounts 1" }, { title: "from before accounts 2" }]).returning({ id: tasks.id });
    const oldIds = old.map((r) => r.id);
    expect(oldIds).toHaveLength(2);
    for (const who of [alice, bob]) {
      await expect(who.get(oldIds[0]!)).rejects.toMatchObject({ code: "not_found" });
      expect((await who.list({ limit: 50 })).tasks.map((t) => t.id)).not.toContain(oldIds[0]);
    }

    expect(await claimUnownedTasks(store.database.db, { email: "nobody@example.test" })).toBeNull();
    const result = await claimUnownedTasks(store.database.db, { email: `claimant-${claimant}@example.test` });
    expect(result).toEqual({ userId: claimant, claimed: 2 });
    await store.cache?.driver.forUser(claimant).dropIndex(); // as the script does

    expect((await alice.list({ limit: 50 })).tasks.map((t) => t.id)).toEqual([...oldIds].sort((a, b) => b - a).concat(own.id).sort((a, b) => b - a));
    expect((await alice.get(oldIds[1]!)).task.title).toBe("from before accounts 2");
    await expect(bob.get(oldIds[1]!)).rejects.toMatchObject({ code: "not_found" });
    // Claiming again finds nothing left to claim.
    expect(await claimUnownedTasks(store.database.db, { email: `claimant-${claimant}@example.test` })).toEqual({ userId: claimant, claimed: 0 });
  });
});
