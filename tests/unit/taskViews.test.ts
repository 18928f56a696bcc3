import { describe, expect, test } from "vitest";
import { addDays, checkDue, dueState, formatDue, localDate } from "@/app/_components/due";
import {
  addCounts,
  addOptimistic,
  batchTargets,
  compareInView,
  countsDelta,
  countText,
  editPatch,
  emptyText,
  findTask,
  firstPageData,
  inView,
  isEmptyPatch,
  loadedTasks,
  negateCounts,
  placeTask,
  revertPatch,
  viewCount,
  type TasksData,
  type View,
} from "@/app/_components/taskList";
import {
  changeToast,
  dropToast,
  pendingUndo,
  pushToast,
  undoLabel,
  undoneText,
  type Toast,
} from "@/app/_components/toasts";
import type { Task, TaskCounts } from "@/lib/tasks/schema";

const at = "2030-01-01T00:00:00.000Z";
function task(id: number, fields: Partial<Task> = {}): Task {
  return { id, title: `Task ${id}`, done: false, version: 1, dueOn: null, createdAt: at, updatedAt: at, ...fields };
}
const ids = (data: TasksData) => loadedTasks(data).map((t) => t.id);
/** The tasks in a view's order, as one fully loaded page. */
function viewOf(view: View, tasks: Task[], nextCursor: string | null = null): TasksData {
  return firstPageData(tasks.filter((t) => inView(view, t)).sort((a, b) => compareInView(view, a, b)), nextCursor);
}

describe("which tasks each view lists, and in what order", () => {
  const open = task(1);
  const done = task(2, { done: true });

  test("All and Due list every task; Active the open ones; Completed the done ones", () => {
    expect(inView("all", open) && inView("all", done)).toBe(true);
    expect(inView("due", open) && inView("due", done)).toBe(true);
    expect([inView("active", open), inView("active", done)]).toEqual([true, false]);
    expect([inView("completed", open), inView("completed", done)]).toEqual([false, true]);
  });

  test("the views' tabs count all, open and done; Due, an order rather than a subset, has no count", () => {
    const counts = { all: 42, open: 12, done: 30 };
    expect((["all", "active", "completed", "due"] as const).map((v) => viewCount(v, counts))).toEqual([42, 12, 30, null]);
    expect(emptyText("active")).toMatch(/nothing open/i);
    expect(emptyText("completed")).toMatch(/no completed/i);
  });

  test("newest first, an unsaved (optimistic) task above every saved one; Due by date then id, undated last", () => {
    const tasks = [task(3), task(-1), task(7), task(-2)];
    expect(tasks.slice().sort((a, b) => compareInView("all", a, b)).map((t) => t.id)).toEqual([-2, -1, 7, 3]);
    const dated = [task(1), task(2, { dueOn: "2030-05-01" }), task(3, { dueOn: "2030-01-09" }), task(4, { dueOn: "2030-05-01" }), task(5)];
    expect(dated.sort((a, b) => compareInView("due", a, b)).map((t) => t.id)).toEqual([3, 2, 4, 1, 5]);
  });
});

describe("placeTask(): a confirmed write, as the view would list it", () => {
  test("a task completed in Active leaves Active, stays in All (in place), and joins Completed where it sorts", () => {
    const tasks = [task(5), task(4, { done: true }), task(3), task(2, { done: true }), task(1)];
    const completed = task(3, { done: true, version: 2 });
    expect(ids(placeTask(viewOf("active", tasks), "active", completed))).toEqual([5, 1]);
    const all = placeTask(viewOf("all", tasks), "all", completed);
    expect(ids(all)).toEqual([5, 4, 3, 2, 1]);
    expect(findTask(all, 3)).toEqual(completed);
    expect(ids(placeTask(viewOf("completed", tasks), "completed", completed))).toEqual([4, 3, 2]);
  });

  test("a reopened task leaves Completed and comes back to Active in its own place", () => {
    const tasks = [task(5), task(4, { done: true }), task(3), task(1)];
    const reopened = task(4, { done: false, version: 3 });
    expect(ids(placeTask(viewOf("completed", tasks), "completed", reopened))).toEqual([]);
    expect(ids(placeTask(viewOf("active", tasks), "active", reopened))).toEqual([5, 4, 3, 1]);
  });

  test("in Due a new due date moves the row; an undated task goes last", () => {
    const tasks = [task(1, { dueOn: "2030-01-01" }), task(2, { dueOn: "2030-02-01" }), task(3, { dueOn: "2030-03-01" }), task(4)];
    const data = viewOf("due", tasks);
    expect(ids(data)).toEqual([1, 2, 3, 4]);
    expect(ids(placeTask(data, "due", task(3, { dueOn: "2029-12-31" })))).toEqual([3, 1, 2, 4]);
    expect(ids(placeTask(data, "due", task(1, { dueOn: null })))).toEqual([2, 3, 1, 4]);
    // A title change keeps the row where it is.
    expect(ids(placeTask(data, "due", task(2, { title: "renamed", dueOn: "2030-02-01" })))).toEqual([1, 2, 3, 4]);
  });

  test("a task that sorts past the last loaded one, with more to load, is left for Load more", () => {
    const data = viewOf("all", [task(9), task(8)], "8");
    expect(ids(placeTask(data, "all", task(3)))).toEqual([9, 8]);
    expect(ids(placeTask(viewOf("all", [task(9), task(8)]), "all", task(3)))).toEqual([9, 8, 3]);
    // Restored into the middle of what is loaded: its own place.
    expect(ids(placeTask(viewOf("all", [task(9), task(7)], "7"), "all", task(8)))).toEqual([9, 8, 7]);
  });

  test("an optimistic create shows only in the views that list it, and not in a view still loading", () => {
    const temp = task(-1, { title: "Buy milk", dueOn: "2030-01-15" });
    const due = viewOf("due", [task(1, { dueOn: "2030-01-10" }), task(2, { dueOn: "2030-01-20" })]);
    expect(ids(addOptimistic(due, "due", temp)!)).toEqual([1, -1, 2]);
    expect(ids(addOptimistic(viewOf("active", [task(1)]), "active", temp)!)).toEqual([-1, 1]);
    const completed = viewOf("completed", [task(1, { done: true })]);
    expect(addOptimistic(completed, "completed", temp)).toBe(completed);
    expect(addOptimistic(undefined, "all", temp)).toBeUndefined();
  });
});

describe("the counts", () => {
  const counts: TaskCounts = { all: 42, open: 12, done: 30 };

  test("each write moves them: create, complete, reopen, delete, restore", () => {
    expect(countsDelta(null, { done: false })).toEqual({ all: 1, open: 1, done: 0 });
    expect(countsDelta({ done: false }, { done: true })).toEqual({ all: 0, open: -1, done: 1 });
    expect(countsDelta({ done: true }, { done: false })).toEqual({ all: 0, open: 1, done: -1 });
    expect(countsDelta({ done: true }, null)).toEqual({ all: -1, open: 0, done: -1 });
    expect(countsDelta(null, { done: true })).toEqual({ all: 1, open: 0, done: 1 });
    expect(countsDelta({ done: false }, { done: false })).toEqual({ all: 0, open: 0, done: 0 });
  });

  test("a write taken back gives back exactly what it moved; the shown counts never go below zero", () => {
    const complete = countsDelta({ done: false }, { done: true });
    expect(addCounts(counts, complete, negateCounts(complete))).toEqual(counts);
    expect(addCounts({ all: 0, open: 0, done: 0 }, countsDelta({ done: true }, null))).toEqual({ all: 0, open: 0, done: 0 });
  });

  test("the count line reads like “12 open · 30 done · 42 tasks”, one task in the singular", () => {
    expect(countText(counts)).toBe("12 open · 30 done · 42 tasks");
    expect(countText({ all: 1, open: 1, done: 0 })).toBe("1 open · 0 done · 1 task");
    expect(countText({ all: 0, open: 0, done: 0 })).toBe("0 open · 0 done · 0 tasks");
  });
});

describe("batches and the undo of an edit", () => {
  test("Mark all done takes the loaded open tasks, Clear completed the loaded done ones; never an unsaved one", () => {
    const tasks = [task(-1), task(3), task(2, { done: true }), task(1)];
    expect(batchTargets(tasks, "complete").map((t) => t.id)).toEqual([3, 1]);
    expect(batchTargets(tasks, "delete").map((t) => t.id)).toEqual([2]);
    expect(batchTargets([task(2, { done: true })], "complete")).toEqual([]);
  });

  test("an edit sends only what changed, and its undo puts back only those old values", () => {
    const before = task(1, { title: "Buy milk", dueOn: "2030-01-05" });
    expect(editPatch(before, "Buy milk", "2030-01-06")).toEqual({ dueOn: "2030-01-06" });
    expect(editPatch(before, "Buy oat milk", null)).toEqual({ title: "Buy oat milk", dueOn: null });
    expect(isEmptyPatch(editPatch(before, "Buy milk", "2030-01-05"))).toBe(true);
    expect(revertPatch(before, { title: "Buy oat milk", dueOn: null })).toEqual({ title: "Buy milk", dueOn: "2030-01-05" });
    expect(revertPatch(before, { dueOn: "2030-02-02" })).toEqual({ dueOn: "2030-01-05" });
    expect(revertPatch(task(2, { dueOn: null }), { dueOn: "2030-02-02" })).toEqual({ dueOn: null });
  });
});

describe("toasts: several pending at once, each Undo its own", () => {
  const deleteA: Toast = { key: 1, text: "Deleted “A”", undo: { kind: "restore", id: 10, title: "A", idempotencyKey: "k-a" } };
  const deleteB: Toast = { key: 2, text: "Deleted “B”", undo: { kind: "restore", id: 11, title: "B", idempotencyKey: "k-b" } };

  test("two deletes pending: undoing the first changes only its toast, the second still offers its own Undo", () => {
    let stack = pushToast(pushToast([], deleteA), deleteB);
    expect(stack.map((t) => t.key)).toEqual([1, 2]);
    expect(pendingUndo(stack, 1)).toEqual(deleteA.undo);

    stack = changeToast(stack, 1, (t) => ({ ...t, undoing: true }));
    // Pressed twice while on its way: the second press does nothing.
    expect(pendingUndo(stack, 1)).toBeUndefined();
    expect(pendingUndo(stack, 2)).toEqual(deleteB.undo);

    stack = changeToast(stack, 1, () => ({ key: 3, text: undoneText(deleteA.undo!) }));
    expect(stack).toEqual([{ key: 3, text: "Task restored" }, deleteB]);
    expect(pendingUndo(stack, 2)).toEqual({ kind: "restore", id: 11, title: "B", idempotencyKey: "k-b" });
  });

  test("a toast dismissed or gone is left alone; the stack keeps at most four, never dropping one mid-undo", () => {
    const stack = pushToast([], deleteA);
    expect(changeToast(stack, 99, () => null)).toBe(stack);
    expect(dropToast(stack, 1)).toEqual([]);

    let many: Toast[] = [{ ...deleteA, undoing: true }];
    for (let key = 2; key <= 6; key++) many = pushToast(many, { key, text: `t${key}` });
    expect(many.map((t) => t.key)).toEqual([1, 4, 5, 6]);
  });

  test("each Undo button says what it undoes", () => {
    expect(undoLabel(deleteA.undo!)).toBe("Undo delete of “A”");
    expect(undoLabel({ kind: "toggle", id: 1, title: "A", done: false })).toBe("Undo completing “A”");
    expect(undoLabel({ kind: "toggle", id: 1, title: "A", done: true })).toBe("Undo reopening “A”");
    expect(undoLabel({ kind: "edit", id: 1, title: "A", patch: { title: "B" }, version: 3 })).toBe("Undo edit of “A”");
    expect(undoLabel({ kind: "batch", op: "reopen", ids: [1, 2, 3], idempotencyKey: "k" })).toBe("Undo marking 3 tasks done");
    expect(undoLabel({ kind: "batch", op: "restore", ids: [1], idempotencyKey: "k" })).toBe("Undo clearing 1 completed task");
  });
});

describe("due dates", () => {
  test("shown the same in every locale: “3 Dec”, with the year when it isn't this year's (or this year isn't known yet)", () => {
    expect(formatDue("2030-12-03", "2030-06-01")).toBe("3 Dec");
    expect(formatDue("2031-01-09", "2030-06-01")).toBe("9 Jan 2031");
    expect(formatDue("2030-12-03", null)).toBe("3 Dec 2030");
  });

  test("overdue before today, Today on it; nothing for a done task, an undated one, or before today is known", () => {
    const today = "2030-06-15";
    expect(dueState("2030-06-14", false, today)).toBe("overdue");
    expect(dueState("2029-12-31", false, today)).toBe("overdue");
    expect(dueState("2030-06-15", false, today)).toBe("today");
    expect(dueState("2030-06-16", false, today)).toBe("upcoming");
    expect(dueState("2030-06-14", true, today)).toBeNull();
    expect(dueState(null, false, today)).toBeNull();
    expect(dueState("2030-06-14", false, null)).toBeNull();
  });

  test("today is the local calendar date; days count across months and years", () => {
    expect(localDate(new Date(2030, 0, 5, 23, 59))).toBe("2030-01-05");
    expect(localDate(new Date(2030, 11, 31, 0, 1))).toBe("2030-12-31");
    expect(addDays("2030-12-31", 1)).toBe("2031-01-01");
    expect(addDays("2030-03-01", -1)).toBe("2030-02-28");
  });

  test("a date field: empty is no date, an unfinished or out-of-range date is refused with a message", () => {
    expect(checkDue("")).toEqual({ ok: true, dueOn: null });
    expect(checkDue("2030-02-28")).toEqual({ ok: true, dueOn: "2030-02-28" });
    expect(checkDue("", true)).toMatchObject({ ok: false });
    expect(checkDue("1999-12-31")).toMatchObject({ ok: false, message: expect.stringMatching(/2000/) });
    expect(checkDue("2030-02-30")).toMatchObject({ ok: false });
  });
});
