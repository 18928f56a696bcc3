import type { InfiniteData } from "@tanstack/react-query";
import type { ActionError } from "@/app/actions";
import type { Task } from "@/lib/tasks/schema";

/*
 * Pure helpers over the page's task list as react-query holds it: pages of tasks, newest first,
 * each with the cursor of the next. Nothing here touches React, the network or the clock.
 */

export type Page = { tasks: Task[]; nextCursor: string | null };
export type TasksData = InfiniteData<Page, string | null>;
/** Where a task sat: which loaded page, and where in it. */
export type Position = { page: number; index: number };

export const TASKS_KEY = ["tasks"] as const;

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
export function optimisticTask(tempId: number, title: string, done: boolean, now: string): Task {
  return { id: tempId, title, done, version: 0, createdAt: now, updatedAt: now };
}

/** The server's task in place of the optimistic one (or just the optimistic one gone, if a reread already brought it). */
export function confirmCreated(data: TasksData, tempId: number, saved: Task): TasksData {
  if (findTask(data, saved.id)) return removeTask(data, tempId).data;
  return mapTask(data, tempId, () => saved);
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

/** The live count line above the list. */
export function openCountText(tasks: Task[], hasMore: boolean): string {
  const open = tasks.filter((t) => !t.done).length;
  if (hasMore) return `${open === 0 ? "None" : open} open among the ${tasks.length} loaded`;
  if (tasks.length === 0) return ""; // the empty state below says it
  if (open === 0) return "All done";
  return `${open} open`;
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

/** A create that did not get through, kept so that sending the same title again is a retry of it. */
export type FailedSubmission = { title: string; idempotencyKey: string };

/**
 * The idempotency key for submitting `title`: the failed submission's own key when this is that
 * submission again (so a create that did reach the server is not made twice), else a new one.
 */
export function submissionKey(title: string, lastFailed: FailedSubmission | null, newKey: () => string): string {
  return lastFailed?.title === title ? lastFailed.idempotencyKey : newKey();
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
