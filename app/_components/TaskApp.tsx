"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, type Task, type TaskCounts } from "@/lib/tasks/rules";
import type { TaskPatch } from "@/lib/tasks/schema";
import { isUnanswered, toActionError } from "./actionErrors";
import AddTaskForm from "./AddTaskForm";
import AlertBanner from "./AlertBanner";
import {
  batchTargets,
  countText,
  describeRefusal,
  emptyText,
  inView,
  newIdempotencyKey,
  quote,
  revertPatch,
  tasksKey,
  tasksNoun,
  VIEWS,
  type View,
} from "./taskList";
import TaskItem from "./TaskItem";
import ToastRegion from "./Toast";
import {
  clearedText,
  deletedText,
  editedText,
  markedDoneText,
  pendingUndo,
  toggledText,
  undoingText,
  undoneText,
  type Undo,
} from "./toasts";
import { useFocusRestore } from "./useFocusRestore";
import { useLiveUpdates, type LiveMode } from "./useLiveUpdates";
import { useNotices } from "./useNotices";
import { useTaskList } from "./useTaskList";
import { useToday } from "./useToday";
import { useWriteQueue } from "./useWriteQueue";
import ViewTabs, { tabId } from "./ViewTabs";

const ignore = () => undefined;

/**
 * The signed-in person's tasks: the add form, the views (with their counts), the rows, Mark all
 * done and Clear completed, and the notices. Each view's list lives in react-query's cache
 * (useTaskList), writes go through useWriteQueue, focus is looked after by useFocusRestore, and
 * every destructive action gets a toast of its own whose Undo reverts just that action.
 */
export default function TaskApp({
  initialTasks,
  initialNextCursor,
  initialCounts,
  live = "poll",
  initialEtag = null,
}: {
  initialTasks: Task[];
  initialNextCursor: string | null;
  initialCounts: TaskCounts;
  /** How changes made elsewhere reach this page (useLiveUpdates). */
  live?: LiveMode;
  /** The ETag GET /api/tasks gives for the first page as rendered (checked once the page listens). */
  initialEtag?: string | null;
}) {
  const queryClient = useQueryClient();
  const { alert, toasts, nextKey, showAlert, dismissAlert, showToast, updateToast, dismissToast, getToasts } = useNotices();
  const writes = useWriteQueue({ onAlert: showAlert });
  const [view, setView] = useState<View>("all");
  const [switched, setSwitched] = useState(false);
  const list = useTaskList({
    view,
    initialView: "all",
    serveInitial: !switched,
    initialTasks,
    initialNextCursor,
    initialCounts,
    reads: { readToken: writes.readToken, adoptCounts: writes.adoptCounts, onPageLoaded: writes.noteVersions },
  });
  const { tasks, counts } = list;
  useLiveUpdates({
    mode: live,
    onChanges: writes.applyRemote,
    onResync: writes.resync,
    // The view as loaded (at least a default page, so the first check matches the page as rendered).
    checkUrl: () => {
      const { status, sort } = VIEWS[view];
      return `/api/tasks?status=${status}&sort=${sort}&limit=${Math.min(Math.max(tasks.length, LIST_LIMIT_DEFAULT), LIST_LIMIT_MAX)}`;
    },
    initial: { url: `/api/tasks?status=all&sort=new&limit=${LIST_LIMIT_DEFAULT}`, etag: initialEtag },
  });
  const today = useToday();
  const { panelRef, addInputRef, toastRegionRef, focusAfterUndo } = useFocusRestore(tasks);
  const idBase = useId();
  const panelId = `${idBase}-panel`;
  const titleHintId = `${idBase}-title-hint`;

  const selectView = (next: View) => {
    if (next === view) return;
    // Always read afresh: what another view showed a moment ago may have changed since.
    queryClient.removeQueries({ queryKey: tasksKey(next), exact: true });
    setSwitched(true);
    setView(next);
  };

  /* ----- writes, each with its own toast once the server has it ----- */

  const addTask = async (title: string, dueOn: string | null, idempotencyKey: string): Promise<string | null> => {
    try {
      const saved = await writes.create({ title, dueOn, idempotencyKey });
      // Added from a view that doesn't list it: say where it went.
      if (!inView(view, saved)) showToast(`Added ${quote(saved.title)} to Active`);
      return null;
    } catch (err) {
      return toActionError(err).message;
    }
  };

  const onToggle = (task: Task, done: boolean) => {
    writes.toggle(task, done).then(
      (saved) => showToast(toggledText(saved.title, done), { kind: "toggle", id: saved.id, title: saved.title, done: !done }),
      ignore, // alerted by the write queue
    );
  };

  const onSave = (task: Task, patch: TaskPatch) => {
    const back = revertPatch(task, patch);
    writes.edit(task, patch).then(
      (saved) =>
        showToast(editedText(saved.title), { kind: "edit", id: saved.id, title: saved.title, patch: back, version: saved.version }),
      ignore,
    );
  };

  const onDelete = (task: Task) => {
    writes.remove(task).then(
      (last) =>
        last
          ? showToast(deletedText(last.title), { kind: "restore", id: last.id, title: last.title, idempotencyKey: newIdempotencyKey() })
          : showToast("Task deleted (it was already gone)"),
      ignore,
    );
  };

  const toComplete = batchTargets(tasks, "complete");
  const toClear = batchTargets(tasks, "delete");

  const markAllDone = () => {
    if (toComplete.length === 0) return;
    writes.batch("complete", toComplete, newIdempotencyKey()).then(({ tasks: done }) => {
      const ids = done.map((t) => t.id);
      if (ids.length > 0) showToast(markedDoneText(ids.length), { kind: "batch", op: "reopen", ids, idempotencyKey: newIdempotencyKey() });
    }, ignore);
  };

  const clearCompleted = () => {
    if (toClear.length === 0) return;
    writes.batch("delete", toClear, newIdempotencyKey()).then(({ ids }) => {
      if (ids.length > 0) showToast(clearedText(ids.length), { kind: "batch", op: "restore", ids, idempotencyKey: newIdempotencyKey() });
    }, ignore);
  };

  /* ----- Undo: each toast's own action, and nothing else ----- */

  const runUndo = async (undo: Undo): Promise<number | undefined> => {
    switch (undo.kind) {
      case "restore":
        return (await writes.restore(undo.id, undo.idempotencyKey)).id;
      case "toggle":
        // Ticked out of the view it was in, it may be loaded nowhere: it is in the state the tick left it.
        return (await writes.revert(undo.id, undo.title, { done: undo.done }, { assumed: { done: !undo.done } })).id;
      case "edit":
        // Only if nothing changed the task since the edit: never over someone's later change.
        return (await writes.revert(undo.id, undo.title, undo.patch, { expectedVersion: undo.version })).id;
      case "batch":
        return (await writes.undoBatch(undo.op, undo.ids, undo.idempotencyKey))[0]?.id;
    }
  };

  const undoRefusal = (undo: Undo, err: unknown): string => {
    const error = toActionError(err);
    if (undo.kind === "batch") {
      const what = undo.op === "reopen" ? `reopen ${tasksNoun(undo.ids.length)}` : `restore ${tasksNoun(undo.ids.length)}`;
      const why =
        error.code === "not_found" || error.code === "conflict"
          ? "one of them changed since, so nothing was changed. The latest list is shown now."
          : error.message;
      return `Couldn't ${what}: ${why}`;
    }
    if (undo.kind === "restore") return `Couldn't restore ${quote(undo.title)}: ${error.message}`;
    if (error.code === "precondition_failed") {
      return `Couldn't undo the change to ${quote(undo.title)}: it changed since. The latest version is shown now.`;
    }
    return `Couldn't undo the change to ${quote(undo.title)}: ${describeRefusal(error, "update")}`;
  };

  const onUndo = (key: number) => {
    const undo = pendingUndo(getToasts(), key);
    if (!undo) return;
    const offered = getToasts().find((t) => t.key === key)?.text ?? "";
    updateToast(key, (t) => ({ ...t, undoing: true, text: undoingText(undo) }));
    runUndo(undo).then(
      (focusId) => {
        updateToast(key, () => ({ key: nextKey(), text: undoneText(undo) }));
        if (focusId !== undefined) focusAfterUndo(focusId);
      },
      (err: unknown) => {
        // No answer: the offer stays (and keeps focus on its button), so the person can try again.
        // A refusal: the toast goes, and the banner says why.
        if (isUnanswered(err)) updateToast(key, (t) => ({ ...t, undoing: false, text: offered || t.text }));
        else updateToast(key, () => null);
        showAlert(undoRefusal(undo, err));
      },
    );
  };

  const hasMore = list.nextCursor !== null;
  const noneToComplete = toComplete.length === 0;
  const noneToClear = toClear.length === 0;

  return (
    <>
      <AddTaskForm onAdd={addTask} inputRef={addInputRef} />

      <AlertBanner notice={alert} onDismiss={dismissAlert} />

      <section className="list-section" aria-labelledby="list-heading">
        <h2 id="list-heading" className="visually-hidden">
          Your tasks
        </h2>
        <ViewTabs idBase={idBase} panelId={panelId} view={view} counts={counts} onSelect={selectView} />

        <div className="list-header">
          <p className="open-count" role="status" data-testid="open-count">
            {countText(counts)}
          </p>
          <div className="batch-actions">
            {/* aria-disabled, not disabled: the button keeps focus when its last task goes. "Mark all
                complete", not "... done": no other button's name may contain "Done" (the API-key
                panel's Done is found by that word). */}
            <button
              type="button"
              className="button button-secondary button-small"
              aria-disabled={noneToComplete || undefined}
              onClick={markAllDone}
            >
              Mark all done
            </button>
            <button
              type="button"
              className="button button-secondary button-small"
              aria-disabled={noneToClear || undefined}
              onClick={clearCompleted}
            >
              Clear completed
            </button>
          </div>
        </div>

        <div
          role="tabpanel"
          id={panelId}
          aria-labelledby={tabId(idBase, view)}
          className="list-panel"
          ref={panelRef}
          aria-busy={list.loading || undefined}
        >
          {list.loading ? (
            <p className="empty">Loading tasks…</p>
          ) : tasks.length === 0 && !hasMore ? (
            list.error ? null : <p className="empty">{emptyText(view)}</p>
          ) : (
            <>
              <ul className="task-list">
                {tasks.map((task) => (
                  <TaskItem
                    key={task.id}
                    task={task}
                    busy={writes.busyIds.has(task.id)}
                    today={today}
                    onToggle={onToggle}
                    onSave={onSave}
                    onDelete={onDelete}
                    titleHintId={titleHintId}
                  />
                ))}
              </ul>
              {/* One hint for every row's title (each points to it), not one per row. */}
              <p id={titleHintId} hidden>
                Double-click, or press Enter or F2, to edit this title.
              </p>
            </>
          )}

          {list.error && (
            <div className="list-error" role="alert">
              <p>Couldn&rsquo;t load tasks: {toActionError(list.error).message}</p>
              {tasks.length === 0 && (
                <button type="button" className="button button-secondary button-small" onClick={list.retry}>
                  Try again
                </button>
              )}
            </div>
          )}

          {hasMore && (
            <div className="load-more">
              <button
                type="button"
                className="button button-secondary"
                onClick={list.loadMore}
                disabled={list.loadingMore}
                aria-busy={list.loadingMore || undefined}
              >
                {list.loadingMore ? "Loading…" : "Load more"}
              </button>
            </div>
          )}
        </div>
      </section>

      <ToastRegion toasts={toasts} regionRef={toastRegionRef} onUndo={onUndo} onDismiss={dismissToast} />
    </>
  );
}
