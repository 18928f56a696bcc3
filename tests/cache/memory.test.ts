import { describe, expect, test } from "vitest";
import { createMemoryDriver } from "@/lib/cache/memory";
import { registerCacheDriverContract } from "./contract";

registerCacheDriverContract("memory", async () =>
  createMemoryDriver({ ttlSeconds: 3600, tombstoneTtlSeconds: 3600, maxEntries: 1000 }),
);

describe("memory driver limits", () => {
  test("entries expire after their TTL", async () => {
    let now = 1_000_000;
    const driver = createMemoryDriver({ ttlSeconds: 5, tombstoneTtlSeconds: 5, maxEntries: 10, now: () => now }).forUser("u1");
    await driver.putTask({ id: 1, title: "t", done: false, version: 1, dueOn: null, createdAt: "x", updatedAt: "x" }, await driver.epoch());
    now += 4_000;
    expect((await driver.getTask(1)).state).toBe("hit");
    now += 2_000;
    expect((await driver.getTask(1)).state).toBe("miss");
  });

  test("auth values expire after their TTL", async () => {
    let now = 1_000_000;
    const driver = createMemoryDriver({ ttlSeconds: 5, tombstoneTtlSeconds: 5, maxEntries: 10, now: () => now });
    await driver.setValue("s", "v", 5);
    await driver.revokeValue("r", 5);
    now += 6_000;
    expect(await driver.getValue("s")).toBeNull();
    const ticket = await driver.beginFill("r", 5);
    expect(ticket).not.toBeNull();
    expect(await driver.fillValue("r", "back after the revocation expired", 5, ticket!)).toBe(true);
  });

  test("the oldest entries are dropped past maxEntries", async () => {
    const driver = createMemoryDriver({ ttlSeconds: 60, tombstoneTtlSeconds: 60, maxEntries: 100 }).forUser("u1");
    for (let id = 1; id <= 150; id++) {
      await driver.putTask({ id, title: "t", done: false, version: 1, dueOn: null, createdAt: "x", updatedAt: "x" }, await driver.epoch());
    }
    expect((await driver.getTask(1)).state).toBe("miss");
    expect((await driver.getTask(150)).state).toBe("hit");
  });
});
