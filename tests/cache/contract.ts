import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { CacheDriver, IndexRow, UserTaskCache } from "@/lib/cache/types";
import { dueScore, type Task, type TaskSort, type TaskStatus } from "@/lib/tasks/schema";

/**
 * The one contract every cache driver must keep, run against each driver by its own test file.
 * It speaks only the CacheDriver interface, so a new driver is checked by adding one file. Task
 * tests run on one user's slot (`driver`); the connection (`conn`) flushes and closes.
 */
export function registerCacheDriverContract(name: string, createDriver: () => Promise<CacheDriver>) {
  describe(`${name} cache driver contract`, () => {
    let conn: CacheDriver;
    let driver: UserTaskCache;
    let epoch: string;
    beforeEach(async () => {
      conn = await createDriver();
      driver = conn.forUser("alice");
      epoch = await driver.epoch();
    });
    afterEach(async () => {
      await conn.close();
    });

    const task = (id: number, version: number, title = `task ${id} v${version}`, extra: Partial<Task> = {}): Task => ({
      id,
      title,
      done: false,
      version,
      dueOn: null,
      createdAt: "2026-01-01T00:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
      ...extra,
    });
    const row = (id: number, version = 1, done = false, dueOn: string | null = null): IndexRow => ({ id, version, done, dueOn });
    /** Builds and publishes the views from `rows`, as a cold list does. */
    const publish = async (rows: IndexRow[] = []) => {
      const start = await driver.startIndexBuild(10_000);
      if (start.state !== "started") throw new Error(`expected to start a build, got ${start.state}`);
      if (rows.length > 0) expect(await driver.addToIndexBuild(start.token, rows)).toBe(true);
      expect(await driver.publishIndexBuild(start.token)).toBe(true);
    };
    const ids = async (status: TaskStatus = "all", sort: TaskSort = "new", after?: number, limit = 50) => (await driver.getViewPage({ status, sort, after, limit }))?.ids ?? null;

    test("getTask() is a miss when the key does not exist", async () => {
      expect(await driver.getTask(1)).toEqual({ state: "miss" });
    });

    test("putTask() stores a task that getTask() returns unchanged", async () => {
      const t = task(1, 1, "ünïcødé 😀 \"quoted\" | bar");
      expect(await driver.putTask(t, epoch)).toBe("written");
      expect(await driver.getTask(1)).toEqual({ state: "hit", task: t });
    });

    test("putTask() replaces an older version", async () => {
      await driver.putTask(task(1, 1), epoch);
      expect(await driver.putTask(task(1, 2), epoch)).toBe("written");
      expect(await driver.getTask(1)).toEqual({ state: "hit", task: task(1, 2) });
    });

    test("putTask() refuses an older or equal version and keeps the newer entry", async () => {
      await driver.putTask(task(1, 5), epoch);
      expect(await driver.putTask(task(1, 4), epoch)).toBe("refused");
      expect(await driver.putTask(task(1, 5, "same version, other title"), epoch)).toBe("unchanged");
      expect(await driver.getTask(1)).toEqual({ state: "hit", task: task(1, 5) });
    });

    test("putTask() compares versions as numbers, not strings (10 beats 9)", async () => {
      await driver.putTask(task(1, 10), epoch);
      expect(await driver.putTask(task(1, 9), epoch)).toBe("refused");
      expect(await driver.getTask(1)).toEqual({ state: "hit", task: task(1, 10) });
    });

    test("putTombstone() replaces a live entry and getTask() reports the tombstone", async () => {
      await driver.putTask(task(1, 3), epoch);
      expect(await driver.putTombstone(1, 4, epoch)).toBe("written");
      expect(await driver.getTask(1)).toEqual({ state: "tombstone", version: 4 });
    });

    test("a tombstone refuses every fill at or below its version", async () => {
      await driver.putTombstone(1, 4, epoch);
      expect(await driver.putTask(task(1, 3), epoch)).toBe("refused");
      expect(await driver.putTask(task(1, 4), epoch)).toBe("refused");
      expect(await driver.putTask(task(1, 1), epoch)).toBe("refused");
      expect(await driver.getTask(1)).toEqual({ state: "tombstone", version: 4 });
    });

    test("putTombstone() on an absent key still writes the tombstone", async () => {
      expect(await driver.putTombstone(7, 2, epoch)).toBe("written");
      expect(await driver.getTask(7)).toEqual({ state: "tombstone", version: 2 });
    });

    test("putMissing() writes a version-0 tombstone where nothing is cached, and nowhere else", async () => {
      expect(await driver.putMissing(8, epoch)).toBe("written");
      expect(await driver.getTask(8)).toEqual({ state: "tombstone", version: 0 });
      await driver.putTask(task(9, 1), epoch);
      expect(await driver.putMissing(9, epoch)).toBe("refused");
      expect(await driver.getTask(9)).toEqual({ state: "hit", task: task(9, 1) });
      await driver.putTombstone(10, 3, epoch);
      expect(await driver.putMissing(10, epoch)).toBe("refused");
      expect(await driver.getTask(10)).toEqual({ state: "tombstone", version: 3 });
      expect(await driver.putMissing(11, "another epoch")).toBe("stale-epoch");
      expect(await driver.getTask(11)).toEqual({ state: "miss" });
    });

    test("abandonIndexBuild() frees the lease for the next builder, only for the token that holds it", async () => {
      const first = await driver.startIndexBuild(30_000);
      if (first.state !== "started") throw new Error("no build");
      expect(await driver.startIndexBuild(30_000)).toEqual({ state: "busy" });
      expect(await driver.abandonIndexBuild("not the token")).toBe(false);
      expect(await driver.startIndexBuild(30_000)).toEqual({ state: "busy" });
      expect(await driver.abandonIndexBuild(first.token)).toBe(true);
      expect(await driver.addToIndexBuild(first.token, [row(1)])).toBe(false);
      const second = await driver.startIndexBuild(30_000);
      expect(second.state).toBe("started");
      expect(await driver.readIndex()).toBeNull();
    });

    test("a create outranks a negative entry: putTask() writes over it and joins the views", async () => {
      await driver.putMissing(12, epoch);
      await publish();
      expect(await driver.putTask(task(12, 1), epoch)).toBe("written");
      expect(await driver.getTask(12)).toEqual({ state: "hit", task: task(12, 1) });
      expect(await ids()).toContain(12);
      // A negative entry is short-lived; a real tombstone lasts as long as any other.
      await driver.putMissing(13, epoch);
      const [missingTtl] = await driver.ttls([13]);
      expect(missingTtl).toBeGreaterThan(0);
      expect(missingTtl).toBeLessThanOrEqual(60);
    });

    test("getTasks() returns hits, tombstones and misses in the order asked", async () => {
      await driver.putTask(task(1, 1), epoch);
      await driver.putTombstone(2, 2, epoch);
      expect(await driver.getTasks([3, 1, 2])).toEqual([
        { state: "miss" },
        { state: "hit", task: task(1, 1) },
        { state: "tombstone", version: 2 },
      ]);
      expect(await driver.getTasks([])).toEqual([]);
    });

    test("getViewPage() is null (a miss) until views have been published", async () => {
      expect(await driver.getViewPage({ status: "all", sort: "new", limit: 10 })).toBeNull();
      await driver.putTask(task(1, 1), epoch);
      expect(await driver.getViewPage({ status: "open", sort: "due", limit: 10 })).toBeNull();
    });

    test("published views page newest first, after the cursor, up to the limit, with counts", async () => {
      await publish([row(3), row(1, 1, true), row(10), row(2, 4, true)]);
      expect(await driver.getViewPage({ status: "all", sort: "new", limit: 10 })).toEqual({
        ids: [10, 3, 2, 1],
        positions: [10, 3, 2, 1],
        counts: { all: 4, open: 2, done: 2 },
      });
      expect(await ids("all", "new", undefined, 2)).toEqual([10, 3]);
      expect(await ids("all", "new", 3)).toEqual([2, 1]);
      expect(await ids("all", "new", 1)).toEqual([]);
      expect(await ids("open")).toEqual([10, 3]);
      expect(await ids("done")).toEqual([2, 1]);
      expect(await ids("done", "new", 2)).toEqual([1]);
    });

    test("due views order dated tasks by day then id, undated last, and page after a position", async () => {
      await publish([row(1, 1, false, "2026-12-24"), row(2), row(3, 1, true, "2026-12-01"), row(4, 1, false, "2026-12-24"), row(5, 1, false, "2000-01-01")]);
      expect(await ids("all", "due")).toEqual([5, 3, 1, 4, 2]);
      expect(await ids("open", "due")).toEqual([5, 1, 4, 2]);
      expect(await ids("done", "due")).toEqual([3]);
      const first = await driver.getViewPage({ status: "all", sort: "due", limit: 3 });
      expect(first?.positions).toEqual([dueScore({ id: 5, dueOn: "2000-01-01" }), dueScore({ id: 3, dueOn: "2026-12-01" }), dueScore({ id: 1, dueOn: "2026-12-24" })]);
      expect(await ids("all", "due", first?.positions[2])).toEqual([4, 2]);
      expect(await ids("all", "due", dueScore({ id: 4, dueOn: "2026-12-24" }))).toEqual([2]);
    });

    test("an empty published index is a hit with no ids and zero counts, not a miss", async () => {
      await publish();
      expect(await driver.getViewPage({ status: "done", sort: "due", limit: 10 })).toEqual({ ids: [], positions: [], counts: { all: 0, open: 0, done: 0 } });
    });

    test("writes keep complete views up to date: a create joins, a completion moves, a due date re-sorts, a delete leaves", async () => {
      await publish([row(1), row(2)]);
      await driver.putTask(task(5, 1), epoch);
      await driver.putTombstone(1, 2, epoch);
      expect(await ids()).toEqual([5, 2]);
      expect(await driver.getTask(5)).toEqual({ state: "hit", task: task(5, 1) });
      await driver.putTask(task(2, 2, "done now", { done: true }), epoch);
      expect(await ids("open")).toEqual([5]);
      expect(await ids("done")).toEqual([2]);
      await driver.putTask(task(5, 2, "dated", { dueOn: "2030-01-01" }), epoch);
      expect(await ids("all", "due")).toEqual([5, 2]);
      expect(await ids("open", "due")).toEqual([5]);
      expect((await driver.getViewPage({ status: "all", sort: "new", limit: 0 }))?.counts).toEqual({ all: 2, open: 1, done: 1 });
    });

    test("a state older than the one the views hold changes nothing, whatever the entry holds", async () => {
      await publish([row(7, 3, true)]);
      // A late write-through of version 2 (open) after version 3 (done) was applied: refused by the
      // entry (absent here, so it is written) but never by the views, which stay on version 3.
      expect(await driver.putTask(task(7, 2), epoch)).toBe("written");
      expect(await ids("done")).toEqual([7]);
      expect(await ids("open")).toEqual([]);
      // A later state does move it; a tombstone at 4 removes it, and version 4 live can't return.
      await driver.putTombstone(7, 4, epoch);
      await driver.putTask(task(7, 4), epoch);
      expect(await ids()).toEqual([]);
      expect((await driver.getViewPage({ status: "all", sort: "new", limit: 0 }))?.counts).toEqual({ all: 0, open: 0, done: 0 });
      // A restore (version 5) outranks the tombstone.
      expect(await driver.putTask(task(7, 5), epoch)).toBe("written");
      expect(await ids("open")).toEqual([7]);
    });

    test("writeTasks() writes many entries and their views in one call, each with its own result", async () => {
      await publish([row(1), row(2)]);
      await driver.putTask(task(2, 5), epoch);
      const results = await driver.writeTasks([{ task: task(1, 2, "one", { done: true }) }, { task: task(2, 4) }, { id: 3, version: 2, deleted: true }, { task: task(4, 1) }], epoch);
      expect(results).toEqual(["written", "refused", "written", "written"]);
      expect(await ids("done")).toEqual([1]);
      expect(await ids("open")).toEqual([4, 2]);
      expect(await driver.getTasks([1, 3])).toEqual([{ state: "hit", task: task(1, 2, "one", { done: true }) }, { state: "tombstone", version: 2 }]);
      expect(await driver.writeTasks([], epoch)).toEqual([]);
    });

    test("putTask() adds the id to the views even when the entry was already filled", async () => {
      await publish();
      await driver.putTask(task(4, 1), epoch); // a reader filled it before the create's write-through
      expect(await driver.putTask(task(4, 1), epoch)).toBe("unchanged");
      expect(await ids()).toEqual([4]);
    });

    test("startIndexBuild() says exists when complete views are there, and busy while another build holds the lease", async () => {
      const first = await driver.startIndexBuild(10_000);
      expect(first.state).toBe("started");
      expect((await driver.startIndexBuild(10_000)).state).toBe("busy");
      if (first.state !== "started") return;
      await driver.publishIndexBuild(first.token);
      expect((await driver.startIndexBuild(10_000)).state).toBe("exists");
    });

    test("writes during a build are merged into it by version: creates added, moves kept, deletes removed even if the snapshot had them", async () => {
      const start = await driver.startIndexBuild(10_000);
      if (start.state !== "started") throw new Error("build not started");
      // Snapshot read from Postgres before these writes committed: has 2 and 3 (open), lacks 9.
      await driver.putTask(task(9, 1), epoch);
      await driver.putTombstone(2, 2, epoch);
      await driver.putTask(task(3, 2, "done meanwhile", { done: true }), epoch);
      await driver.addToIndexBuild(start.token, [row(1), row(2), row(3)]);
      expect(await driver.publishIndexBuild(start.token)).toBe(true);
      expect(await ids()).toEqual([9, 3, 1]);
      expect(await ids("done")).toEqual([3]);
      expect(await ids("open")).toEqual([9, 1]);
    });

    test("a build whose lease was taken over cannot add or publish", async () => {
      const stale = await driver.startIndexBuild(50);
      if (stale.state !== "started") throw new Error("build not started");
      await new Promise((r) => setTimeout(r, 120));
      const fresh = await driver.startIndexBuild(10_000);
      expect(fresh.state).toBe("started");
      expect(await driver.addToIndexBuild(stale.token, [row(1)])).toBe(false);
      expect(await driver.publishIndexBuild(stale.token)).toBe(false);
      expect(await ids()).toBeNull();
    });

    test("a published build replaces views left over from before, including views it leaves empty", async () => {
      await publish([row(1, 1, true)]);
      await driver.dropIndex();
      await publish([row(2)]);
      expect(await ids("done")).toEqual([]);
      expect(await ids("open")).toEqual([2]);
    });

    test("dropIndex() makes the list a miss again and cancels a build in progress", async () => {
      await publish();
      await driver.dropIndex();
      expect(await ids()).toBeNull();
      const again = await driver.startIndexBuild(10_000);
      if (again.state !== "started") throw new Error("build not started");
      await driver.dropIndex();
      expect(await driver.publishIndexBuild(again.token)).toBe(false);
    });

    test("scanEntries() yields every hit and tombstone exactly once", async () => {
      for (let id = 1; id <= 25; id++) await driver.putTask(task(id, 1), epoch);
      await driver.putTombstone(30, 2, epoch);
      const seen = new Map<number, string>();
      for await (const batch of driver.scanEntries(10)) {
        for (const { id, entry } of batch) {
          expect(seen.has(id)).toBe(false);
          seen.set(id, entry.state);
        }
      }
      expect(seen.size).toBe(26);
      expect(seen.get(30)).toBe("tombstone");
      expect(seen.get(7)).toBe("hit");
    });

    test("readIndex() returns every view whole and each id's membership version, or null without complete views", async () => {
      expect(await driver.readIndex()).toBeNull();
      await publish([row(4), row(8, 2, true), row(6, 1, false, "2027-03-01")]);
      await driver.putTombstone(4, 2, epoch);
      const snapshot = await driver.readIndex();
      expect(snapshot?.views).toEqual({ "all:new": [8, 6], "open:new": [6], "done:new": [8], "all:due": [6, 8], "open:due": [6], "done:due": [8] });
      expect(snapshot && [...snapshot.versions].sort((a, b) => a[0] - b[0])).toEqual([[4, 2], [6, 1], [8, 2]]);
    });

    test("evictTask() turns a live entry into a miss that refuses any older version but takes the same one back", async () => {
      await driver.putTask(task(1, 3), epoch);
      expect(await driver.evictTask(1)).toBe(true);
      expect(await driver.getTask(1)).toEqual({ state: "miss" });
      expect(await driver.putTask(task(1, 2), epoch)).toBe("refused");
      expect(await driver.putMissing(1, epoch)).toBe("refused");
      expect(await driver.putTask(task(1, 3), epoch)).toBe("written");
      expect(await driver.getTask(1)).toEqual({ state: "hit", task: task(1, 3) });
      await driver.putTombstone(2, 4, epoch);
      expect(await driver.evictTask(2)).toBe(false);
      expect(await driver.getTask(2)).toEqual({ state: "tombstone", version: 4 });
      expect(await driver.evictTask(3)).toBe(false);
      expect(await driver.getTask(3)).toEqual({ state: "miss" });
    });

    test("flushUser() ends the epoch, drops the views and evicts the given entries, and nobody else's", async () => {
      const bob = conn.forUser("bob");
      const bobEpoch = await bob.epoch();
      await bob.putTask(task(1, 1), bobEpoch);
      await driver.putTask(task(1, 2), epoch);
      await driver.putTask(task(2, 1), epoch);
      await publish([row(1, 2), row(2)]);
      await driver.flushUser([1, 2, 3]);
      expect(await driver.epoch()).not.toBe(epoch);
      expect(await ids()).toBeNull();
      expect(await driver.getTasks([1, 2])).toEqual([{ state: "miss" }, { state: "miss" }]);
      expect(await driver.putTask(task(1, 1), await driver.epoch())).toBe("refused");
      expect(await driver.putTask(task(2, 2), epoch)).toBe("stale-epoch");
      expect(await bob.getTask(1)).toEqual({ state: "hit", task: task(1, 1) });
      expect(await bob.epoch()).toBe(bobEpoch);
    });

    test("scratch values: setScratch()/getScratch() are plain, casScratch() is the versioned compare-and-set", async () => {
      expect(await driver.getScratch("race:naive")).toBeNull();
      await driver.setScratch("race:naive", "v2", 60);
      await driver.setScratch("race:naive", "v1", 60);
      expect(await driver.getScratch("race:naive")).toBe("v1");
      expect(await driver.casScratch("race:ours", 2, "two", 60)).toBe("written");
      expect(await driver.casScratch("race:ours", 1, "one", 60)).toBe("refused");
      expect(await driver.casScratch("race:ours", 2, "two", 60)).toBe("unchanged");
      expect(await driver.getScratch("race:ours")).toBe("2|two");
      expect(await conn.forUser("bob").getScratch("race:naive")).toBeNull();
      await expect(driver.getScratch("Bad Name")).rejects.toThrow();
    });

    test("epoch() is stable until a flush, and a new one after it", async () => {
      expect(await driver.epoch()).toBe(epoch);
      await conn.flush();
      const next = await driver.epoch();
      expect(next).not.toBe(epoch);
      expect(await driver.epoch()).toBe(next);
    });

    test("flush() drops entries, tombstones and the index", async () => {
      await driver.putTask(task(1, 1), epoch);
      await driver.putTombstone(2, 2, epoch);
      const start = await driver.startIndexBuild(10_000);
      if (start.state !== "started") throw new Error("build not started");
      await driver.publishIndexBuild(start.token);
      await conn.flush();
      expect(await driver.getTasks([1, 2])).toEqual([{ state: "miss" }, { state: "miss" }]);
      expect(await ids()).toBeNull();
    });

    test("writes prepared before a flush are refused after it (stale epoch), so a slow fill can't resurrect a flushed tombstone", async () => {
      await driver.putTombstone(3, 5, epoch);
      await conn.flush();
      expect(await driver.putTask(task(3, 4), epoch)).toBe("stale-epoch");
      expect(await driver.putTask(task(4, 1), epoch)).toBe("stale-epoch");
      expect(await driver.putTombstone(5, 2, epoch)).toBe("stale-epoch");
      expect(await driver.getTasks([3, 4, 5])).toEqual([{ state: "miss" }, { state: "miss" }, { state: "miss" }]);
      const fresh = await driver.epoch();
      expect(await driver.putTask(task(3, 4), fresh)).toBe("written");
    });

    test("a stale-epoch create or delete still updates complete views", async () => {
      await conn.flush();
      const fresh = await driver.epoch();
      await publish([row(1)]);
      expect(await driver.putTask(task(6, 1), epoch)).toBe("stale-epoch");
      expect(await driver.putTombstone(1, 2, epoch)).toBe("stale-epoch");
      expect(await ids()).toEqual([6]);
      expect(fresh).not.toBe(epoch);
    });

    test("a create arriving after its own delete's tombstone is not added to the views", async () => {
      await publish();
      await driver.putTombstone(8, 2, epoch);
      expect(await driver.putTask(task(8, 1), epoch)).toBe("refused");
      expect(await ids()).toEqual([]);
    });

    test("ttls() gives the seconds left for each entry and -2 for an absent one", async () => {
      await driver.putTask(task(1, 1), epoch);
      const [live, absent] = await driver.ttls([1, 2]);
      expect(live).toBeGreaterThan(3000);
      expect(live).toBeLessThanOrEqual(3960);
      expect(absent).toBe(-2);
    });

    test("ping() resolves when the cache is reachable", async () => {
      await expect(conn.ping()).resolves.toBeUndefined();
    });

    // ---- per-user scope ----------------------------------------------------------------------

    test("forUser() scopes everything: another user's entries, index and epoch are separate", async () => {
      const bob = conn.forUser("bob");
      const bobEpoch = await bob.epoch();
      expect(bobEpoch).not.toBe(epoch);
      await driver.putTask(task(1, 3), epoch);
      expect(await bob.getTask(1)).toEqual({ state: "miss" });
      // The same id in bob's slot is bob's own entry; alice's version does not refuse it.
      expect(await bob.putTask(task(1, 1, "bob's"), bobEpoch)).toBe("written");
      expect(await driver.getTask(1)).toEqual({ state: "hit", task: task(1, 3) });
      // An epoch is valid only in its own slot.
      expect(await bob.putTask(task(2, 1), epoch)).toBe("stale-epoch");
      await publish([row(1, 3)]);
      expect(await ids()).toEqual([1]);
      expect(await bob.getViewPage({ status: "all", sort: "new", limit: 10 })).toBeNull();
      expect(await bob.startIndexBuild(10_000)).toMatchObject({ state: "started" });
    });

    test("scanAllEntries() yields every user's entries with their owner", async () => {
      const bob = conn.forUser("bob");
      await driver.putTask(task(1, 1), epoch);
      await bob.putTombstone(2, 5, await bob.epoch());
      const seen: Array<{ userId: string; id: number; state: string }> = [];
      for await (const batch of conn.scanAllEntries(10)) for (const e of batch) seen.push({ userId: e.userId, id: e.id, state: e.entry.state });
      expect(seen.sort((a, b) => a.id - b.id)).toEqual([
        { userId: "alice", id: 1, state: "hit" },
        { userId: "bob", id: 2, state: "tombstone" },
      ]);
    });

    test("flush() drops every user's entries and epochs", async () => {
      const bob = conn.forUser("bob");
      const bobEpoch = await bob.epoch();
      await bob.putTask(task(1, 1), bobEpoch);
      await conn.flush();
      expect(await bob.getTask(1)).toEqual({ state: "miss" });
      expect(await bob.epoch()).not.toBe(bobEpoch);
    });

    test("forUser() refuses an id that could break out of the hash tag", () => {
      expect(() => conn.forUser("a}b")).toThrow();
      expect(() => conn.forUser("")).toThrow();
    });

    // ---- auth values ---------------------------------------------------------------------------

    test("getValue() is null for an absent key; setValue() stores and replaces", async () => {
      expect(await conn.getValue("k")).toBeNull();
      expect(await conn.setValue("k", "v1", 60)).toBe(true);
      expect(await conn.getValue("k")).toBe("v1");
      expect(await conn.setValue("k", "v2")).toBe(true);
      expect(await conn.getValue("k")).toBe("v2");
    });

    test("beginFill() parks a ticket only in an empty key, which reads as absent until fillValue() writes with it", async () => {
      const ticket = await conn.beginFill("k", 10);
      expect(ticket).toEqual(expect.any(String));
      expect(await conn.getValue("k")).toBeNull();
      expect(await conn.getAndDeleteValue("k")).toBeNull();
      expect(await conn.beginFill("k", 10)).toBeNull();
      expect(await conn.fillValue("k", "with another ticket", 60, `${ticket}x`)).toBe(false);
      expect(await conn.fillValue("k", "filled", 60, ticket!)).toBe(true);
      expect(await conn.getValue("k")).toBe("filled");
      expect(await conn.fillValue("k", "again", 60, ticket!)).toBe(false);
      expect(await conn.beginFill("k", 10)).toBeNull();
      expect(await conn.getValue("k")).toBe("filled");
    });

    test("a revocation or a flush while a fill reads Postgres makes that fill refuse itself", async () => {
      const revokedMeanwhile = await conn.beginFill("s1", 10);
      await conn.revokeValue("s1", 60);
      expect(await conn.fillValue("s1", "read before the sign-out", 60, revokedMeanwhile!)).toBe(false);
      expect(await conn.getValue("s1")).toBeNull();
      const flushedMeanwhile = await conn.beginFill("s2", 10);
      await conn.flush();
      expect(await conn.fillValue("s2", "read before the flush", 60, flushedMeanwhile!)).toBe(false);
      expect(await conn.getValue("s2")).toBeNull();
    });

    test("replaceValue() replaces only a live value: never an absent key, a revocation or a fill in progress", async () => {
      expect(await conn.replaceValue("absent", "v", 60)).toBe(false);
      expect(await conn.getValue("absent")).toBeNull();
      await conn.setValue("live", "v1", 60);
      expect(await conn.replaceValue("live", "v2", 60)).toBe(true);
      expect(await conn.getValue("live")).toBe("v2");
      await conn.revokeValue("live", 60);
      expect(await conn.replaceValue("live", "v3", 60)).toBe(false);
      expect(await conn.getValue("live")).toBeNull();
      const ticket = await conn.beginFill("filling", 10);
      expect(await conn.replaceValue("filling", "v", 60)).toBe(false);
      expect(await conn.fillValue("filling", "from Postgres", 60, ticket!)).toBe(true);
    });

    test("revokeValue() reads as absent, and neither a set, a replace nor a fill can bring the value back", async () => {
      await conn.setValue("session", "live", 60);
      await conn.revokeValue("session", 60);
      expect(await conn.getValue("session")).toBeNull();
      expect(await conn.beginFill("session", 10)).toBeNull();
      expect(await conn.setValue("session", "from a slow refresh", 60)).toBe(false);
      expect(await conn.replaceValue("session", "from a slow refresh", 60)).toBe(false);
      expect(await conn.getValue("session")).toBeNull();
      expect(await conn.getAndDeleteValue("session")).toBeNull();
    });

    test("deleteValue() empties a key; getAndDeleteValue() returns the value once", async () => {
      await conn.setValue("a", "1");
      await conn.deleteValue("a");
      expect(await conn.getValue("a")).toBeNull();
      await conn.setValue("b", "once", 60);
      expect(await conn.getAndDeleteValue("b")).toBe("once");
      expect(await conn.getAndDeleteValue("b")).toBeNull();
    });

    test("incrementValue() counts from 1", async () => {
      expect(await conn.incrementValue("n", 60)).toBe(1);
      expect(await conn.incrementValue("n", 60)).toBe(2);
      expect(await conn.incrementValue("n", 60)).toBe(3);
    });

    test("decrementValue() takes one back, never below 0, and leaves an absent counter absent", async () => {
      await conn.incrementValue("n", 60);
      await conn.incrementValue("n", 60);
      expect(await conn.decrementValue("n")).toBe(1);
      expect(await conn.decrementValue("n")).toBe(0);
      expect(await conn.decrementValue("n")).toBe(0);
      expect(await conn.incrementValue("n", 60)).toBe(1);
      expect(await conn.decrementValue("never-counted")).toBe(0);
      expect(await conn.getValue("never-counted")).toBeNull();
    });
  });
}
