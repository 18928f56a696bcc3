"use client";

import { useRef } from "react";
import type { Task } from "@/lib/tasks/schema";
import { toActionError } from "./actionErrors";
import AddTaskForm from "./AddTaskForm";
import AlertBanner from "./AlertBanner";
import { newIdempotencyKey, openCountText, quote } from "./taskList";
import TaskItem from "./TaskItem";
import ToastRegion, { type Toast } from "./Toast";
import { useFocusRestore } from "./useFocusRestore";
import { useNotices } from "./useNotices";
import { useTaskList } from "./useTaskList";
import { useWriteQueue } from "./useWriteQueue";

/**
 * The signed-in person's task list: the add form, the rows, the count line and the notices. The
 * list itself lives in react-query's cache (useTaskList), writes go through useWriteQueue, and
 * focus is looked after by useFocusRestore.
 */
export default function TaskApp({
  initialTasks,
  initialNextCursor,
}: {
  initialTasks: Task[];
  initialNextCursor: string | null;
}) {
  const { alert, toast, nextKey, showAlert, dismissAlert, showToast, updateToast, dismissToast } = useNotices();
  const writes = useWriteQueue({
    onAlert: showAlert,
    onDeleted: (last) =>
      last
        ? showToast(`Deleted ${quote(last.title)}`, { id: last.id, title: last.title, done: last.done, idempotencyKey: newIdempotencyKey() })
        : showToast("Task deleted (it was already gone)"),
  });
  const list = useTaskList({ initialTasks, initialNextCursor, onPageLoaded: writes.noteVersions });
  const { tasks } = list;
  const { listRef, addInputRef, toastRegionRef, focusAfterDelete, focusAfterRestore } = useFocusRestore(tasks);

  const addTask = async (title: string, idempotencyKey: string): Promise<string | null> => {
    try {
      await writes.create({ title, idempotencyKey });
      return null;
    } catch (err) {
      return toActionError(err).message;
    }
  };

  const onDelete = (task: Task) => {
    focusAfterDelete(task.id, tasks.findIndex((t) => t.id === task.id));
    writes.remove(task);
  };

  /* ----- undo a delete: the same task back, in its own place (POST .../restore) ----- */
  const restoring = useRef(new Set<number>());
  const onUndoDelete = (key: number) => {
    const offer = toast?.key === key ? toast.undo : undefined;
    if (!offer || offer.restoring || restoring.current.has(key)) return;
    restoring.current.add(key);
    const { id, title, idempotencyKey } = offer;
    const withOffer = (restoringNow: boolean, text: string) => (t: Toast) =>
      t.undo ? { ...t, text, undo: { ...t.undo, restoring: restoringNow } } : t;
    updateToast(key, withOffer(true, `Restoring ${quote(title)}…`));
    // Every try of one offer sends its key: a restore that did reach the server is not made twice.
    writes.restore(id, idempotencyKey).then(
      (task) => {
        restoring.current.delete(key);
        const next = nextKey();
        updateToast(key, () => ({ key: next, text: "Task restored" }));
        focusAfterRestore(task.id);
      },
      (err: unknown) => {
        // The offer stays (and keeps focus on its button), so the person can try again.
        restoring.current.delete(key);
        updateToast(key, withOffer(false, `Deleted ${quote(title)}`));
        showAlert(`Couldn't restore ${quote(title)}: ${toActionError(err).message}`);
      },
    );
  };

  const hasMore = list.nextCursor !== null;

  return (
    <>
      <AddTaskForm onAdd={addTask} inputRef={addInputRef} />

      <AlertBanner notice={alert} onDismiss={dismissAlert} />

      <section className="list-section" aria-labelledby="list-heading">
        <div className={tasks.length === 0 ? "list-header list-header-empty" : "list-header"}>
          <h2 id="list-heading" className="visually-hidden">
            Your tasks
          </h2>
          <p className="open-count" role="status" data-testid="open-count">
            {openCountText(tasks, hasMore)}
          </p>
        </div>

        {tasks.length === 0 && !hasMore ? (
          <p className="empty">No tasks yet. Add your first one above.</p>
        ) : (
          <ul className="task-list" ref={listRef}>
            {tasks.map((task) => (
              <TaskItem
                key={task.id}
                task={task}
                busy={writes.busyIds.has(task.id)}
                onToggle={writes.toggle}
                onRename={writes.rename}
                onDelete={onDelete}
              />
            ))}
          </ul>
        )}

        {list.error && (
          <p className="list-error" role="alert">
            Couldn&rsquo;t load tasks: {toActionError(list.error).message}
          </p>
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
      </section>

      <ToastRegion toast={toast} regionRef={toastRegionRef} onUndo={onUndoDelete} onDismiss={dismissToast} />
    </>
  );
}
