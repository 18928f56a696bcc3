import type { TaskPatch } from "@/lib/tasks/schema";
import { quote, tasksNoun } from "./taskList";

/*
 * The page's toasts: a stack of them, each naming what it is about, several pending at once. A
 * toast can offer to undo one action, and its Undo reverts that action only. Pure: the stack is a
 * value, changed by the functions below (unit-tested), and rendered by Toast.tsx.
 */

/** What one toast's Undo does. */
export type Undo =
  /** A delete: the same task back (restore, one idempotency key for every try). */
  | { kind: "restore"; id: number; title: string; idempotencyKey: string }
  /** A tick or an untick: `done` is the value to put back. */
  | { kind: "toggle"; id: number; title: string; done: boolean }
  /** An edit: `patch` holds the old values; `version` is the version the edit produced (sent as expectedVersion). */
  | { kind: "edit"; id: number; title: string; patch: TaskPatch; version: number }
  /** Mark all done (undone by reopening the ids) or Clear completed (undone by restoring them). */
  | { kind: "batch"; op: "reopen" | "restore"; ids: number[]; idempotencyKey: string };

export type Toast = {
  key: number;
  text: string;
  undo?: Undo;
  /** Its Undo is being sent: the toast stays, and its button says so. */
  undoing?: boolean;
};

/** At most this many toasts at once; past it the oldest that is not busy undoing goes. */
export const MAX_TOASTS = 4;

export function pushToast(stack: readonly Toast[], toast: Toast, max = MAX_TOASTS): Toast[] {
  const next = [...stack, toast];
  while (next.length > max) {
    const oldest = next.findIndex((t) => !t.undoing);
    if (oldest === -1 || oldest === next.length - 1) break;
    next.splice(oldest, 1);
  }
  return next;
}

/** The stack with the toast of this key changed (or removed, when `fn` returns null); the same stack when it has gone. */
export function changeToast(stack: readonly Toast[], key: number, fn: (toast: Toast) => Toast | null): Toast[] {
  const i = stack.findIndex((t) => t.key === key);
  if (i === -1) return stack as Toast[];
  const changed = fn(stack[i]!);
  const next = stack.slice();
  if (changed) next[i] = changed;
  else next.splice(i, 1);
  return next;
}

export function dropToast(stack: readonly Toast[], key: number): Toast[] {
  return changeToast(stack, key, () => null);
}

/** The toast's Undo, if it can be pressed now (not already being sent). */
export function pendingUndo(stack: readonly Toast[], key: number): Undo | undefined {
  const toast = stack.find((t) => t.key === key);
  return toast && !toast.undoing ? toast.undo : undefined;
}

/** The accessible name of a toast's Undo button: it says what it undoes. */
export function undoLabel(undo: Undo): string {
  switch (undo.kind) {
    case "restore":
      return `Undo delete of ${quote(undo.title)}`;
    case "toggle":
      // `done` is the value Undo puts back: true means the action was a reopen.
      return undo.done ? `Undo reopening ${quote(undo.title)}` : `Undo completing ${quote(undo.title)}`;
    case "edit":
      return `Undo edit of ${quote(undo.title)}`;
    case "batch":
      return undo.op === "reopen"
        ? `Undo marking ${tasksNoun(undo.ids.length)} done`
        : `Undo clearing ${tasksNoun(undo.ids.length, "completed")}`;
  }
}

/** What a toast says while its Undo is on its way. */
export function undoingText(undo: Undo): string {
  switch (undo.kind) {
    case "restore":
      return `Restoring ${quote(undo.title)}…`;
    case "toggle":
    case "edit":
      return `Undoing the change to ${quote(undo.title)}…`;
    case "batch":
      return undo.op === "reopen" ? `Reopening ${tasksNoun(undo.ids.length)}…` : `Restoring ${tasksNoun(undo.ids.length)}…`;
  }
}

/** What a toast says once its Undo went through. */
export function undoneText(undo: Undo): string {
  switch (undo.kind) {
    case "restore":
      return "Task restored";
    case "toggle":
      return undo.done ? `${quote(undo.title)} is done again` : `${quote(undo.title)} is open again`;
    case "edit":
      return `Edit of ${quote(undo.title)} undone`;
    case "batch":
      return undo.op === "reopen" ? `Reopened ${tasksNoun(undo.ids.length)}` : `Restored ${tasksNoun(undo.ids.length)}`;
  }
}

/* ----- what each action's toast says ----- */

export const deletedText = (title: string) => `Deleted ${quote(title)}`;
export const toggledText = (title: string, done: boolean) => `${done ? "Completed" : "Reopened"} ${quote(title)}`;
export const editedText = (title: string) => `Edited ${quote(title)}`;
export const markedDoneText = (n: number) => `Marked ${tasksNoun(n)} done`;
export const clearedText = (n: number) => `Cleared ${tasksNoun(n, "completed")}`;
