import type { InfiniteData } from "@tanstack/react-query";
import type { ActionError } from "@/app/actions";
import { dueDay, PG_INT_MAX, type Task, type TaskCounts, type TaskSort, type TaskStatus } from "@/lib/tasks/rules";
import type { TaskPatch } from "@/lib/tasks/schema";

/*
 * Pure helpers over the page's task list as react-query holds it: for one view, pages of tasks in
 * the view's order, each with the cursor of the next. Nothing here touches React, the network or
 * the clock.
 */

export type Page = { tasks: Task[]; nextCursor: string | null };
export type TasksData = InfiniteData<Page, string | null>;
/** Where a task sat: which loaded page, and where in it. */
export type Position = { page: number; index: number };

/* ---------- views ---------- */

/** The page's views: every live task, the open ones, the completed ones, every live one by due date. */
export type View = "all" | "active" | "completed" | "due";
export const VIEW_ORDER: readonly View[] = ["all", "active", "completed", "due"];
export const VIEWS: Record<View, { label: string; status: TaskStatus; sort: TaskSort }> = {
  all: { label: "All", status: "all", sort: "new" },
  active: { label: "Active", status: "open", sort: "new" },
  completed: { label: "Completed", status: "done", sort: "new" },
  due: { label: "Due", status: "all", sort: "due" },
};

/** Every view's list lives under this prefix; one view's under tasksKey(view). */
export const TASKS_KEY = ["tasks"] as const;
export const tasksKey = (view: View) => ["tasks", view] as const;
export const COUNTS_KEY = ["taskCounts"] as const;

export function isView(value: unknown): value is View {
  return typeof value === "string" && (VIEW_ORDER as readonly string[]).includes(value);
}

/** Whether a task is one the view lists (by its status; every view lists only live tasks). */
export function inView(view: View, task: Pick<Task, "done">): boolean {
  const { status } = VIEWS[view];
  return status === "all" || (status === "open" ? !task.done : task.done);
}

/** An optimistic task (negative id) counts as newer than every saved one, the later the newer. */
function idRank(id: number): number {
  return id < 0 ? PG_INT_MAX - id : id;
}

/**
 * The view's order, as the server lists it: newest first (id descending), or by due date (then id),
 * undated last. Negative: `a` comes first.
 */
export function compareInView(view: View, a: Task, b: Task): number {
  if (VIEWS[view].sort === "due") {
    const byDay = dueDay(a.dueOn) - dueDay(b.dueOn);
    return byDay !== 0 ? byDay : idRank(a.id) - idRank(b.id);
  }
  return idRank(b.id) - idRank(a.id);
}

/**
 * `task` where the view's loaded pages would have it: replaced in place, moved when its due date
 * moved it, put where it sorts when it is new to the view (only inside the loaded range: past the
 * last loaded task, with more to load, it arrives with Load more), or taken out when it no longer
 * belongs to the view (a task completed in Active).
 */
export function placeTask(data: TasksData, view: View, task: Task): TasksData {
  const current = findTask(data, task.id);
  if (!inView(view, task)) return current ? removeTask(data, task.id).data : data;
  if (current && (VIEWS[view].sort === "new" || current.dueOn === task.dueOn)) return mapTask(data, task.id, () => task);
  const without = current ? removeTask(data, task.id).data : data;
  return insertSorted(without, view, task);
}

/** Inserts a task (not already loaded) before the first loaded task it sorts before. */
export function insertSorted(data: TasksData, view: View, task: Task): TasksData {
  if (data.pages.length === 0) return firstPageData([task], null);
  for (let p = 0; p < data.pages.length; p++) {
    const page = data.pages[p]!;
    const index = page.tasks.findIndex((t) => compareInView(view, task, t) < 0);
    if (index === -1) continue;
    const pages = data.pages.slice();
    const tasks = page.tasks.slice();
    tasks.splice(index, 0, task);
    pages[p] = { ...page, tasks };
    return { ...data, pages };
  }
  if (nextCursorOf(data) !== null) return data; // beyond what is loaded: Load more brings it
  const pages = data.pages.slice();
  const last = pages[pages.length - 1]!;
  pages[pages.length - 1] = { ...last, tasks: [...last.tasks, task] };
  return { ...data, pages };
}

/* ---------- counts ---------- */

export const NO_COUNTS: TaskCounts = { all: 0, open: 0, done: 0 };

/**
 * How a write moves the counts: `before` and `after` are the task's state either side of it,
 * null where it does not exist (before a create or a restore, after a delete).
 */
export function countsDelta(before: Pick<Task, "done"> | null, after: Pick<Task, "done"> | null): TaskCounts {
  const d = { all: 0, open: 0, done: 0 };
  if (before) {
    d.all--;
    if (before.done) d.done--;
    else d.open--;
  }
  if (after) {
    d.all++;
    if (after.done) d.done++;
    else d.open++;
  }
  return d;
}

/** The sum of counts and deltas (never below zero). */
export function addCounts(...parts: TaskCounts[]): TaskCounts {
  const sum = { all: 0, open: 0, done: 0 };
  for (const p of parts) {
    sum.all += p.all;
    sum.open += p.open;
    sum.done += p.done;
  }
  return { all: Math.max(0, sum.all), open: Math.max(0, sum.open), done: Math.max(0, sum.done) };
}

export function negateCounts(d: TaskCounts): TaskCounts {
  return { all: -d.all, open: -d.open, done: -d.done };
}

/** The count line: "12 open · 30 done · 42 tasks" ("1 task"). */
export function countText(counts: TaskCounts): string {
  return `${counts.open} open · ${counts.done} done · ${counts.all} ${counts.all === 1 ? "task" : "tasks"}`;
}

/** The number a view's tab shows, or null (Due is an order, not a subset: it has no count of its own). */
export function viewCount(view: View, counts: TaskCounts): number | null {
  if (view === "all") return counts.all;
  if (view === "active") return counts.open;
  if (view === "completed") return counts.done;
  return null;
}

/** What a view says when it has nothing to show. */
export function emptyText(view: View): string {
  if (view === "active") return "Nothing open. Well done!";
  if (view === "completed") return "No completed tasks yet.";
  return "No tasks yet. Add your first one above.";
}

/* ---------- batches and undo ---------- */

/** The loaded tasks "Mark all done" completes (open, saved) and "Clear completed" deletes (done, saved). */
export function batchTargets(tasks: Task[], op: "complete" | "delete"): Task[] {
  return tasks.filter((t) => t.id > 0 && (op === "complete" ? !t.done : t.done));
}

/** The patch that puts back what `patch` changed on `before` (the undo of an edit). */
export function revertPatch(before: Pick<Task, "title" | "done" | "dueOn">, patch: TaskPatch): TaskPatch {
  const back: TaskPatch = {};
  if (patch.title !== undefined && patch.title !== before.title) back.title = before.title;
  if (patch.done !== undefined && patch.done !== before.done) back.done = before.done;
  if (patch.dueOn !== undefined && patch.dueOn !== before.dueOn) back.dueOn = before.dueOn;
  return back;
}

/** The part of an edit that changes something (empty: nothing to send). */
export function editPatch(before: Pick<Task, "title" | "dueOn">, title: string, dueOn: string | null): TaskPatch {
  const patch: TaskPatch = {};
  if (title !== before.title) patch.title = title;
  if (dueOn !== before.dueOn) patch.dueOn = dueOn;
  return patch;
}

export function isEmptyPatch(patch: TaskPatch): boolean {
  return patch.title === undefined && patch.done === undefined && patch.dueOn === undefined;
}

/** "1 task", "3 tasks". */
export function tasksNoun(n: number, adjective = ""): string {
  return `${n} ${adjective}${adjective ? " " : ""}${n === 1 ? "task" : "tasks"}`;
}

export function firstPageData(tasks: Task[], nextCursor: string | null): TasksData {
  return { pages: [{ tasks, nextCursor }], pageParams: [null] };
}

/** Every loaded task once, in page order (a task can sit on two pages when the list moved between reads). */
export function loadedTasks(data: TasksData): Task[] {
  const seen = new Set<number>();
  const out: Task[] = [];
  for (const page of data.pages) {
    for (const t of page.tasks) {
      if (seen.has(t.id)) continue;
      seen.add(t.id);
      out.push(t);
    }
  }
  return out;
}

/** The cursor for "Load more": the last loaded page's, or null when everything is loaded. */
export function nextCursorOf(data: TasksData): string | null {
  return data.pages[data.pages.length - 1]?.nextCursor ?? null;
}

export function findTask(data: TasksData | undefined, id: number): Task | undefined {
  if (!data) return undefined;
  for (const page of data.pages) {
    const t = page.tasks.find((x) => x.id === id);
    if (t) return t;
  }
  return undefined;
}

/** `fn` applied to the task with this id; the same object back when it isn't loaded. */
export function mapTask(data: TasksData, id: number, fn: (t: Task) => Task): TasksData {
  let changed = false;
  const pages = data.pages.map((page) => {
    if (!page.tasks.some((t) => t.id === id)) return page;
    changed = true;
    return { ...page, tasks: page.tasks.map((t) => (t.id === id ? fn(t) : t)) };
  });
  return changed ? { ...data, pages } : data;
}

/** The list without this task, and the task and where it was (to put it back if the delete fails). */
export function removeTask(data: TasksData, id: number): { data: TasksData; removed?: Task; position?: Position } {
  for (let p = 0; p < data.pages.length; p++) {
    const page = data.pages[p]!;
    const index = page.tasks.findIndex((t) => t.id === id);
    if (index === -1) continue;
    const pages = data.pages.slice();
    pages[p] = { ...page, tasks: page.tasks.filter((t) => t.id !== id) };
    return { data: { ...data, pages }, removed: page.tasks[index], position: { page: p, index } };
  }
  return { data };
}

/** Puts a task back where it was (or as near as the list now allows); never twice. */
export function insertTask(data: TasksData, task: Task, at: Position): TasksData {
  if (findTask(data, task.id)) return data;
  const pages = data.pages.slice();
  const p = Math.min(at.page, pages.length - 1);
  if (p < 0) return { ...data, pages: [{ tasks: [task], nextCursor: null }], pageParams: [null] };
  const page = pages[p]!;
  const tasks = page.tasks.slice();
  tasks.splice(Math.min(at.index, tasks.length), 0, task);
  pages[p] = { ...page, tasks };
  return { ...data, pages };
}

/** A new task goes on top: it is the newest. */
export function prependTask(data: TasksData | undefined, task: Task): TasksData {
  if (!data || data.pages.length === 0) return firstPageData([task], null);
  const [first, ...rest] = data.pages;
  return { ...data, pages: [{ ...first!, tasks: [task, ...first!.tasks] }, ...rest] };
}

/** The optimistic row for a create: a negative id marks it as not yet confirmed by the server. */
export function optimisticTask(tempId: number, title: string, done: boolean, now: string, dueOn: string | null = null): Task {
  return { id: tempId, title, done, version: 0, dueOn, createdAt: now, updatedAt: now };
}

/**
 * The server's task in place of the optimistic one in this view (or just the optimistic one gone,
 * if a reread already brought it; or put where it sorts, if the view never showed the optimistic one).
 */
export function confirmCreated(data: TasksData, view: View, tempId: number, saved: Task): TasksData {
  const temp = findTask(data, tempId);
  if (temp && !findTask(data, saved.id) && inView(view, saved) && VIEWS[view].sort === "new") {
    return mapTask(data, tempId, () => saved);
  }
  return placeTask(temp ? removeTask(data, tempId).data : data, view, saved);
}

/** The optimistic row of a create, where the view would list it (not at all if it doesn't belong there). */
export function addOptimistic(data: TasksData | undefined, view: View, task: Task): TasksData | undefined {
  if (!data || !inView(view, task)) return data; // a view still loading gets it from the server
  return VIEWS[view].sort === "new" ? prependTask(data, task) : insertSorted(data, view, task);
}

/**
 * A page read with `cursor`, added after the loaded ones without the tasks already shown. When
 * the list was reread meanwhile (its last cursor is no longer `cursor`), the page is stale: dropped.
 */
export function appendPage(data: TasksData, page: Page, cursor: string): TasksData {
  if (nextCursorOf(data) !== cursor) return data;
  const have = new Set(data.pages.flatMap((p) => p.tasks.map((t) => t.id)));
  return {
    pages: [...data.pages, { ...page, tasks: page.tasks.filter((t) => !have.has(t.id)) }],
    pageParams: [...data.pageParams, cursor],
  };
}

/** The version to send as expectedVersion: the newest of what the list shows and what the server last told us. */
export function latestVersion(cached: number | undefined, known: number | undefined): number | undefined {
  if (cached === undefined) return known;
  return known === undefined ? cached : Math.max(cached, known);
}

/** A title in quotes for a message, cut to 60 characters (counting an emoji as one). */
export function quote(title: string): string {
  const chars = [...title];
  const short = chars.length > 60 ? `${chars.slice(0, 57).join("")}…` : title;
  return `“${short}”`;
}

/** Plain words for refusals caused by someone else's change; other messages are the server's own. */
export function describeRefusal(error: Pick<ActionError, "code" | "message">, action: "update" | "delete"): string {
  if (error.code === "not_found") return "it was deleted somewhere else.";
  if (error.code === "precondition_failed") {
    return action === "update"
      ? "it was changed somewhere else. The latest version is shown now."
      : "it was changed somewhere else. Check the latest version and delete it again if you still want to.";
  }
  return error.message;
}

/** A create that did not get through, kept so that sending the same task again is a retry of it. */
export type FailedSubmission = { title: string; dueOn: string | null; idempotencyKey: string };

/**
 * The idempotency key for submitting `title` (due `dueOn`): the failed submission's own key when
 * this is that submission again (so a create that did reach the server is not made twice), else a
 * new one (the server refuses a key reused for a different task).
 */
export function submissionKey(
  title: string,
  dueOn: string | null,
  lastFailed: FailedSubmission | null,
  newKey: () => string,
): string {
  return lastFailed?.title === title && lastFailed.dueOn === dueOn ? lastFailed.idempotencyKey : newKey();
}

type RandomSource = Pick<Crypto, "getRandomValues"> & { randomUUID?: () => string };

/**
 * A fresh idempotency key: crypto.randomUUID(), or the same UUID v4 from getRandomValues where
 * randomUUID is missing (pages served over plain http to another host are not a secure context).
 */
export function newIdempotencyKey(source: RandomSource = globalThis.crypto): string {
  if (typeof source.randomUUID === "function") return source.randomUUID();
  const b = source.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
