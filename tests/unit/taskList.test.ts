import { describe, expect, test } from "vitest";
import {
  appendPage,
  confirmCreated,
  describeRefusal,
  findTask,
  firstPageData,
  insertTask,
  latestVersion,
  loadedTasks,
  mapTask,
  newIdempotencyKey,
  nextCursorOf,
  optimisticTask,
  prependTask,
  quote,
  removeTask,
  submissionKey,
  type TasksData,
} from "@/app/_components/taskList";
import type { Task } from "@/lib/tasks/schema";

const at = "2030-01-01T00:00:00.000Z";
function task(id: number, fields: Partial<Task> = {}): Task {
  return { id, title: `Task ${id}`, done: false, version: 1, dueOn: null, createdAt: at, updatedAt: at, ...fields };
}
/** Two loaded pages, newest first: [5, 4, 3] then [2, 1], with more after. */
function twoPages(): TasksData {
  return {
    pages: [
      { tasks: [task(5), task(4), task(3)], nextCursor: "3" },
      { tasks: [task(2), task(1)], nextCursor: "1" },
    ],
    pageParams: [null, "3"],
  };
}
const ids = (data: TasksData) => loadedTasks(data).map((t) => t.id);

describe("the page's task list", () => {
  test("loadedTasks() lists every task once, in page order, even when the list shifted between pages", () => {
    const data = twoPages();
    data.pages[1]!.tasks.unshift(task(3, { title: "seen twice" }));
    expect(ids(data)).toEqual([5, 4, 3, 2, 1]);
    expect(loadedTasks(data)[2]!.title).toBe("Task 3");
  });

  test("nextCursorOf() is the last page's cursor, null once everything is loaded", () => {
    expect(nextCursorOf(twoPages())).toBe("1");
    expect(nextCursorOf(firstPageData([task(1)], null))).toBeNull();
    expect(nextCursorOf({ pages: [], pageParams: [] })).toBeNull();
  });

  test("mapTask() changes only the matching task, and returns the same object when it isn't loaded", () => {
    const data = twoPages();
    const done = mapTask(data, 2, (t) => ({ ...t, done: true }));
    expect(findTask(done, 2)?.done).toBe(true);
    expect(done.pages[0]).toBe(data.pages[0]);
    expect(findTask(data, 2)?.done).toBe(false); // not mutated
    expect(mapTask(data, 99, (t) => t)).toBe(data);
  });

  test("removeTask() says what it took and from where, and insertTask() puts it back there once", () => {
    const data = twoPages();
    const { data: without, removed, position } = removeTask(data, 4);
    expect(ids(without)).toEqual([5, 3, 2, 1]);
    expect(removed?.id).toBe(4);
    expect(position).toEqual({ page: 0, index: 1 });
    const back = insertTask(without, removed!, position!);
    expect(ids(back)).toEqual([5, 4, 3, 2, 1]);
    expect(insertTask(back, removed!, position!)).toBe(back);
    expect(removeTask(data, 99)).toEqual({ data });
  });

  test("insertTask() copes with a list that shrank meanwhile", () => {
    expect(ids(insertTask(firstPageData([task(1)], null), task(9), { page: 3, index: 8 }))).toEqual([1, 9]);
    expect(ids(insertTask({ pages: [], pageParams: [] }, task(9), { page: 0, index: 0 }))).toEqual([9]);
  });

  test("a create shows at the top at once, then becomes the server's task", () => {
    const temp = optimisticTask(-1, "Buy milk", false, at);
    expect(temp).toMatchObject({ id: -1, title: "Buy milk", done: false, version: 0, dueOn: null });
    expect(optimisticTask(-2, "Pay rent", false, at, "2030-02-01").dueOn).toBe("2030-02-01");
    const shown = prependTask(twoPages(), temp);
    expect(ids(shown)).toEqual([-1, 5, 4, 3, 2, 1]);
    expect(ids(prependTask(undefined, temp))).toEqual([-1]);

    const saved = task(6, { title: "Buy milk" });
    expect(ids(confirmCreated(shown, "all", -1, saved))).toEqual([6, 5, 4, 3, 2, 1]);
    // A reread already brought the saved task: the optimistic row just goes, no duplicate.
    const reread = prependTask(prependTask(twoPages(), saved), temp);
    expect(ids(confirmCreated(reread, "all", -1, saved))).toEqual([6, 5, 4, 3, 2, 1]);
    // A view that never showed the optimistic row (it was still loading) gets the saved task where it sorts.
    expect(ids(confirmCreated(twoPages(), "all", -1, saved))).toEqual([6, 5, 4, 3, 2, 1]);
  });

  test("appendPage() adds the next page without tasks already shown, and drops a page read before a reread", () => {
    const data = twoPages();
    const more = appendPage(data, { tasks: [task(1), task(100)], nextCursor: null }, "1");
    expect(ids(more)).toEqual([5, 4, 3, 2, 1, 100]);
    expect(more.pageParams).toEqual([null, "3", "1"]);
    expect(nextCursorOf(more)).toBeNull();
    expect(appendPage(data, { tasks: [task(100)], nextCursor: null }, "3")).toBe(data);
  });

  test("latestVersion() sends the newest version known, from the list or the server", () => {
    expect(latestVersion(3, 5)).toBe(5);
    expect(latestVersion(6, 5)).toBe(6);
    expect(latestVersion(undefined, 5)).toBe(5);
    expect(latestVersion(2, undefined)).toBe(2);
    expect(latestVersion(undefined, undefined)).toBeUndefined();
  });
});

describe("what the page says", () => {
  test("quote() puts a title in quotes and cuts it at 60 characters, an emoji counting as one", () => {
    expect(quote("Buy milk")).toBe("“Buy milk”");
    expect(quote("x".repeat(60))).toBe(`“${"x".repeat(60)}”`);
    expect(quote("😀".repeat(61))).toBe(`“${"😀".repeat(57)}…”`);
  });

  test("describeRefusal() explains someone else's change in plain words, else gives the server's message", () => {
    expect(describeRefusal({ code: "not_found", message: "Task 1 not found." }, "update")).toBe("it was deleted somewhere else.");
    expect(describeRefusal({ code: "precondition_failed", message: "x" }, "update")).toMatch(/latest version is shown now/);
    expect(describeRefusal({ code: "precondition_failed", message: "x" }, "delete")).toMatch(/delete it again/);
    expect(describeRefusal({ code: "rate_limited", message: "Too many writes." }, "delete")).toBe("Too many writes.");
  });
});

describe("idempotency keys for creates", () => {
  test("sending a failed submission again reuses its key; any other title or due date gets a new one", () => {
    let n = 0;
    const newKey = () => `new-${++n}`;
    const failed = { title: "Buy milk", dueOn: null, idempotencyKey: "first" };
    expect(submissionKey("Buy milk", null, failed, newKey)).toBe("first");
    expect(submissionKey("Buy bread", null, failed, newKey)).toBe("new-1");
    expect(submissionKey("Buy milk", null, null, newKey)).toBe("new-2");
    // The same title due another day is another task: the server would refuse the old key for it.
    expect(submissionKey("Buy milk", "2030-03-01", failed, newKey)).toBe("new-3");
  });

  test("newIdempotencyKey() is a UUID, also where crypto.randomUUID is missing", () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    expect(newIdempotencyKey()).toMatch(uuid);
    const insecure = { getRandomValues: crypto.getRandomValues.bind(crypto) }; // no randomUUID
    const keys = new Set(Array.from({ length: 50 }, () => newIdempotencyKey(insecure)));
    expect(keys.size).toBe(50);
    for (const key of keys) expect(key).toMatch(uuid);
    expect(newIdempotencyKey()).toMatch(/^[\x21-\x7e]{1,255}$/);
  });
});
