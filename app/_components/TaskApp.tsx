"use client";

import {
  useInfiniteQuery,
  useMutation,
  useQueryClient,
  type InfiniteData,
  type QueryClient,
} from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  createTaskAction,
  deleteTaskAction,
  listTasksAction,
  updateTaskAction,
  type ActionError,
} from "@/app/actions";
import type { Task, TaskPatch } from "@/lib/tasks/schema";
import AddTaskForm from "./AddTaskForm";
import { fullNavigation } from "./fullNavigation";
import TaskItem from "./TaskItem";

type Page = { tasks: Task[]; nextCursor: string | null };
type TasksData = InfiniteData<Page, string | null>;

const TASKS_KEY = ["tasks"] as const;
/** How long a toast stays up, and how long one offering Undo stays up. */
const TOAST_MS = 5000;
const UNDO_MS = 6000;

/** An action's refusal, carried through react-query as an Error. */
class ActionFailedError extends Error {
  readonly code: ActionError["code"];
  constructor(error: ActionError) {
    super(error.message);
    this.name = "ActionFailedError";
    this.code = error.code;
  }
}

/**
 * The error to throw for a refused action. A session that ended (signed out in another tab, or
 * revoked) sends the person to sign in, and back here afterwards.
 */
function failed(error: ActionError): ActionFailedError {
  if (error.code === "unauthorized") fullNavigation(`/sign-in?next=${encodeURIComponent(window.location.pathname)}`);
  return new ActionFailedError(error);
}

/** Anything thrown on the way (e.g. the network) becomes a public, friendly error. */
function toActionError(err: unknown): ActionError {
  if (err instanceof ActionFailedError) return { code: err.code, message: err.message };
  return { code: "internal_error", message: "Couldn't reach the server. Check your connection and try again." };
}

/* ---------- pure helpers over the cached pages ---------- */

function mapTask(data: TasksData, id: number, fn: (t: Task) => Task): TasksData {
  let changed = false;
  const pages = data.pages.map((page) => {
    if (!page.tasks.some((t) => t.id === id)) return page;
    changed = true;
    return { ...page, tasks: page.tasks.map((t) => (t.id === id ? fn(t) : t)) };
  });
  return changed ? { ...data, pages } : data;
}

type Position = { page: number; index: number };

function removeTask(data: TasksData, id: number): { data: TasksData; removed?: Task; position?: Position } {
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

function insertTask(data: TasksData, task: Task, at: Position): TasksData {
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

function findTask(data: TasksData | undefined, id: number): Task | undefined {
  if (!data) return undefined;
  for (const page of data.pages) {
    const t = page.tasks.find((x) => x.id === id);
    if (t) return t;
  }
  return undefined;
}

function getData(qc: QueryClient): TasksData | undefined {
  return qc.getQueryData<TasksData>(TASKS_KEY);
}

function setData(qc: QueryClient, fn: (d: TasksData) => TasksData): void {
  qc.setQueryData<TasksData>(TASKS_KEY, (d) => (d ? fn(d) : d));
}

function quote(title: string): string {
  const short = [...title].length > 60 ? `${[...title].slice(0, 57).join("")}…` : title;
  return `“${short}”`;
}

/** Plain words for refusals caused by someone else's change; other messages are the server's own. */
function describeRefusal(error: ActionError, action: "update" | "delete"): string {
  if (error.code === "not_found") return "it was deleted somewhere else.";
  if (error.code === "precondition_failed") {
    return action === "update"
      ? "it was changed somewhere else. The latest version is shown now."
      : "it was changed somewhere else. Check the latest version and delete it again if you still want to.";
  }
  return error.message;
}

function openCountText(tasks: Task[], hasMore: boolean): string {
  const open = tasks.filter((t) => !t.done).length;
  if (hasMore) return `${open === 0 ? "None" : open} open among the ${tasks.length} loaded`;
  if (tasks.length === 0) return ""; // the empty state below says it
  if (open === 0) return "All done";
  return `${open} open`;
}

/* ---------- the component ---------- */

type Notice = { key: number; text: string };
/**
 * A delete the person can take back. The server has already deleted the task, so Undo creates it
 * again with the same title and done state (a new task: ids and creation order are the server's).
 */
type UndoOffer = { title: string; done: boolean; restoring: boolean };
type Toast = Notice & { undo?: UndoOffer };
type CreateVars = { title: string; done?: boolean };
type UpdateVars = { task: Task; patch: TaskPatch };
type UpdateContext = { previous: Partial<Pick<Task, "title" | "done">> };
type DeleteVars = { task: Task };
type DeleteContext = { removed?: Task; position?: Position };
type CreateContext = { tempId: number };

export default function TaskApp({
  initialTasks,
  initialNextCursor,
}: {
  initialTasks: Task[];
  initialNextCursor: string | null;
}) {
  const queryClient = useQueryClient();

  const query = useInfiniteQuery({
    queryKey: TASKS_KEY,
    queryFn: async ({ pageParam }): Promise<Page> => {
      const result = await listTasksAction({ cursor: pageParam });
      if (!result.ok) throw failed(result.error);
      return { tasks: result.tasks, nextCursor: result.nextCursor };
    },
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.nextCursor,
    initialData: { pages: [{ tasks: initialTasks, nextCursor: initialNextCursor }], pageParams: [null] },
    refetchOnWindowFocus: false,
  });

  const tasks = useMemo(() => {
    const seen = new Set<number>();
    const out: Task[] = [];
    for (const page of query.data.pages) {
      for (const t of page.tasks) {
        if (seen.has(t.id)) continue;
        seen.add(t.id);
        out.push(t);
      }
    }
    return out;
  }, [query.data]);
  const lastPage = query.data.pages[query.data.pages.length - 1];
  const nextCursor = lastPage?.nextCursor ?? null;

  /* ----- notices: one error banner (role=alert) and one toast (role=status) ----- */
  const [alertNotice, setAlertNotice] = useState<Notice | null>(null);
  const [toast, setToast] = useState<Toast | null>(null);
  const noticeKey = useRef(0);
  const showAlert = useCallback((text: string) => setAlertNotice({ key: ++noticeKey.current, text }), []);
  const showToast = useCallback(
    (text: string, undo?: Omit<UndoOffer, "restoring">) =>
      setToast({ key: ++noticeKey.current, text, ...(undo ? { undo: { ...undo, restoring: false } } : {}) }),
    [],
  );
  // The toast goes away on its own, but never while the pointer or keyboard focus is on it, and an
  // offer to undo stays a little longer than a plain message.
  // (Held by the key of the toast being held, so a new toast is never born held.)
  const [hoveredToast, setHoveredToast] = useState<number | null>(null);
  const [focusedToast, setFocusedToast] = useState<number | null>(null);
  const toastKey = toast?.key;
  const toastHeld = toastKey !== undefined && (hoveredToast === toastKey || focusedToast === toastKey);
  const toastMs = toast?.undo ? (toast.undo.restoring ? null : UNDO_MS) : TOAST_MS;
  useEffect(() => {
    if (toastKey === undefined || toastMs === null || toastHeld) return;
    const timer = setTimeout(() => setToast((t) => (t?.key === toastKey ? null : t)), toastMs);
    return () => clearTimeout(timer);
  }, [toastKey, toastMs, toastHeld]);

  /* ----- bookkeeping that keeps our own writes from conflicting with each other ----- */
  // Writes to one task run one after another, and each sends the version the server last gave us,
  // so a quick toggle-then-edit never trips over its own optimistic-concurrency check.
  const chains = useRef(new Map<number, Promise<unknown>>());
  const knownVersions = useRef(new Map<number, number>());
  const pending = useRef(new Map<number, number>());
  const needsResync = useRef(false);

  const serial = useCallback(<T,>(id: number, fn: () => Promise<T>): Promise<T> => {
    const previous = chains.current.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    chains.current.set(id, next);
    next
      .finally(() => {
        if (chains.current.get(id) === next) chains.current.delete(id);
      })
      .catch(() => undefined);
    return next;
  }, []);

  const expectedVersionFor = useCallback(
    (id: number): number | undefined => {
      const cached = findTask(getData(queryClient), id)?.version;
      const known = knownVersions.current.get(id);
      if (cached === undefined) return known;
      return known === undefined ? cached : Math.max(cached, known);
    },
    [queryClient],
  );

  const noteVersion = (task: Task) => {
    const known = knownVersions.current.get(task.id) ?? 0;
    if (task.version > known) knownVersions.current.set(task.id, task.version);
  };
  // Rows with a write in flight are marked aria-busy (and say "Saving…" if it takes a moment).
  const [busyIds, setBusyIds] = useState<ReadonlySet<number>>(() => new Set());
  const begin = (id: number) => {
    pending.current.set(id, (pending.current.get(id) ?? 0) + 1);
    setBusyIds((s) => (s.has(id) ? s : new Set(s).add(id)));
  };
  const end = (id: number) => {
    const n = (pending.current.get(id) ?? 1) - 1;
    if (n > 0) {
      pending.current.set(id, n);
      return;
    }
    pending.current.delete(id);
    setBusyIds((s) => {
      if (!s.has(id)) return s;
      const next = new Set(s);
      next.delete(id);
      return next;
    });
  };
  const othersPending = (id: number) => (pending.current.get(id) ?? 0) > 1;

  /** Stops a refetch in flight from overwriting an optimistic change with older data. */
  const pauseReads = () => queryClient.cancelQueries({ queryKey: TASKS_KEY });

  /** After a refusal the server may know something we don't: reread once everything settles. */
  const resyncWhenIdle = () => {
    if (needsResync.current && queryClient.isMutating() <= 1) {
      needsResync.current = false;
      void queryClient.invalidateQueries({ queryKey: TASKS_KEY });
    }
  };

  /* ----- create ----- */
  const tempIds = useRef(0);
  const createMutation = useMutation<Task, Error, CreateVars, CreateContext>({
    mutationFn: async ({ title, done }) => {
      const result = await createTaskAction(done === undefined ? { title } : { title, done });
      if (!result.ok) throw failed(result.error);
      return result.task;
    },
    onMutate: async ({ title, done }) => {
      await pauseReads();
      const tempId = -++tempIds.current;
      const now = new Date().toISOString();
      const temp: Task = { id: tempId, title, done: done ?? false, version: 0, createdAt: now, updatedAt: now };
      queryClient.setQueryData<TasksData>(TASKS_KEY, (d) => {
        if (!d || d.pages.length === 0) return { pages: [{ tasks: [temp], nextCursor: null }], pageParams: [null] };
        const [first, ...rest] = d.pages;
        return { ...d, pages: [{ ...first!, tasks: [temp, ...first!.tasks] }, ...rest] };
      });
      return { tempId };
    },
    onSuccess: (task, _vars, ctx) => {
      noteVersion(task);
      setData(queryClient, (d) => {
        if (findTask(d, task.id)) return removeTask(d, ctx.tempId).data;
        return mapTask(d, ctx.tempId, () => task);
      });
    },
    onError: (_err, _vars, ctx) => {
      if (ctx) setData(queryClient, (d) => removeTask(d, ctx.tempId).data);
    },
    onSettled: () => resyncWhenIdle(),
  });

  const addTask = useCallback(
    async (title: string): Promise<string | null> => {
      try {
        await createMutation.mutateAsync({ title });
        return null;
      } catch (err) {
        return toActionError(err).message;
      }
    },
    [createMutation],
  );

  /* ----- update (toggle and rename) ----- */
  const updateMutation = useMutation<Task, Error, UpdateVars, UpdateContext>({
    mutationFn: ({ task, patch }) =>
      serial(task.id, async () => {
        const result = await updateTaskAction({ id: task.id, patch, expectedVersion: expectedVersionFor(task.id) });
        if (!result.ok) throw failed(result.error);
        noteVersion(result.task);
        return result.task;
      }),
    onMutate: async ({ task, patch }) => {
      await pauseReads();
      const current = findTask(getData(queryClient), task.id) ?? task;
      const previous: UpdateContext["previous"] = {};
      if (patch.title !== undefined) previous.title = current.title;
      if (patch.done !== undefined) previous.done = current.done;
      setData(queryClient, (d) => mapTask(d, task.id, (t) => ({ ...t, ...patch })));
      return { previous };
    },
    onSuccess: (saved, { task }) => {
      // While another write to this task is still in flight, keep its optimistic fields.
      setData(queryClient, (d) =>
        mapTask(d, task.id, (t) => (othersPending(task.id) ? { ...t, version: Math.max(t.version, saved.version) } : saved)),
      );
    },
    onError: (err, { task, patch }, ctx) => {
      const error = toActionError(err);
      const what = patch.title !== undefined ? `save ${quote(patch.title)}` : `update ${quote(task.title)}`;
      if (error.code === "not_found") {
        setData(queryClient, (d) => removeTask(d, task.id).data);
      } else if (ctx) {
        setData(queryClient, (d) => mapTask(d, task.id, (t) => ({ ...t, ...ctx.previous })));
      }
      if (error.code !== "validation_failed" && error.code !== "invalid_id") needsResync.current = true;
      showAlert(`Couldn't ${what}: ${describeRefusal(error, "update")}`);
    },
    onSettled: (_data, _err, { task }) => {
      end(task.id);
      resyncWhenIdle();
    },
  });

  /* ----- delete ----- */
  const focusAfterDelete = useRef<{ id: number; index: number } | null>(null);
  const deleteMutation = useMutation<void, Error, DeleteVars, DeleteContext>({
    mutationFn: ({ task }) =>
      serial(task.id, async () => {
        const result = await deleteTaskAction({ id: task.id, expectedVersion: expectedVersionFor(task.id) });
        if (!result.ok) throw failed(result.error);
      }),
    onMutate: async ({ task }) => {
      await pauseReads();
      let ctx: DeleteContext = {};
      setData(queryClient, (d) => {
        const { data, removed, position } = removeTask(d, task.id);
        ctx = { removed, position };
        return data;
      });
      return ctx;
    },
    onSuccess: (_v, { task }, ctx) => {
      setData(queryClient, (d) => removeTask(d, task.id).data);
      knownVersions.current.delete(task.id);
      // The row as it was when it left the list, so optimistic edits made just before count too.
      const last = ctx?.removed ?? task;
      showToast("Task deleted", { title: last.title, done: last.done });
    },
    onError: (err, { task }, ctx) => {
      const error = toActionError(err);
      if (error.code === "not_found") {
        // Already gone: the end state is what the person asked for.
        showToast("Task deleted (it was already gone)");
        return;
      }
      if (ctx?.removed && ctx.position) {
        const { removed, position } = ctx;
        setData(queryClient, (d) => insertTask(d, removed, position));
      }
      needsResync.current = true;
      showAlert(`Couldn't delete ${quote(task.title)}: ${describeRefusal(error, "delete")}`);
    },
    onSettled: (_data, _err, { task }) => {
      end(task.id);
      resyncWhenIdle();
    },
  });

  /* ----- load more (merged into the cache when it arrives, so it never undoes a newer change) ----- */
  const loadMoreMutation = useMutation<Page, Error, string>({
    mutationFn: async (cursor) => {
      const result = await listTasksAction({ cursor });
      if (!result.ok) throw failed(result.error);
      return { tasks: result.tasks, nextCursor: result.nextCursor };
    },
    onSuccess: (page, cursor) => {
      for (const t of page.tasks) noteVersion(t);
      setData(queryClient, (d) => {
        const last = d.pages[d.pages.length - 1];
        if (last?.nextCursor !== cursor) return d; // the list was reread meanwhile
        const have = new Set(d.pages.flatMap((p) => p.tasks.map((t) => t.id)));
        return {
          pages: [...d.pages, { ...page, tasks: page.tasks.filter((t) => !have.has(t.id)) }],
          pageParams: [...d.pageParams, cursor],
        };
      });
    },
  });

  /* ----- handlers handed to rows ----- */
  // Marked busy at once (not in the async onMutate) so the row says so before the next paint.
  const onToggle = (task: Task, done: boolean) => {
    begin(task.id);
    updateMutation.mutate({ task, patch: { done } });
  };
  const onRename = (task: Task, title: string) => {
    begin(task.id);
    updateMutation.mutate({ task, patch: { title } });
  };
  const onDelete = (task: Task) => {
    focusAfterDelete.current = { id: task.id, index: tasks.findIndex((t) => t.id === task.id) };
    begin(task.id);
    deleteMutation.mutate({ task });
  };

  /* ----- undo a delete: create the task again (a new task, so it comes back at the top) ----- */
  const restoring = useRef(new Set<number>());
  const focusAfterRestore = useRef<number | null>(null);
  const [restoredTick, setRestoredTick] = useState(0);
  const onUndoDelete = (key: number) => {
    const offer = toast?.key === key ? toast.undo : undefined;
    if (!offer || offer.restoring || restoring.current.has(key)) return;
    restoring.current.add(key);
    const { title, done } = offer;
    const withOffer = (restoringNow: boolean, text: string) => (t: Toast | null) =>
      t?.key === key && t.undo ? { ...t, text, undo: { ...t.undo, restoring: restoringNow } } : t;
    setToast(withOffer(true, `Restoring ${quote(title)}…`));
    createMutation.mutateAsync({ title, done }).then(
      (task) => {
        restoring.current.delete(key);
        const next = ++noticeKey.current;
        setToast((t) => (t?.key === key ? { key: next, text: "Task restored" } : t));
        focusAfterRestore.current = task.id;
        setRestoredTick((n) => n + 1);
      },
      (err: unknown) => {
        // The offer stays (and keeps focus on its button), so the person can try again.
        restoring.current.delete(key);
        setToast(withOffer(false, "Task deleted"));
        showAlert(`Couldn't restore ${quote(title)}: ${toActionError(err).message}`);
      },
    );
  };

  // Keep keyboard focus somewhere sensible once a deleted row has left the DOM.
  const listRef = useRef<HTMLUListElement>(null);
  const addInputRef = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const target = focusAfterDelete.current;
    if (!target || tasks.some((t) => t.id === target.id)) return;
    focusAfterDelete.current = null;
    const active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    const rows = listRef.current?.querySelectorAll<HTMLElement>(":scope > li") ?? [];
    const row = rows[Math.min(target.index, rows.length - 1)];
    const control = row?.querySelector<HTMLElement>('input[type="checkbox"]:not(:disabled)');
    (control ?? addInputRef.current)?.focus();
  }, [tasks]);

  // A restored task takes focus, unless the person has already moved on to something else.
  const toastRegionRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const id = focusAfterRestore.current;
    if (id === null) return;
    const control = listRef.current?.querySelector<HTMLElement>(
      `li[data-task-id="${id}"] input[type="checkbox"]:not(:disabled)`,
    );
    if (!control) return; // not rendered yet
    focusAfterRestore.current = null;
    const active = document.activeElement;
    const lost = !active || active === document.body || !document.contains(active);
    if (lost || toastRegionRef.current?.contains(active)) control.focus();
  }, [tasks, restoredTick]);

  const hasMore = nextCursor !== null;
  const listError = loadMoreMutation.error ?? query.error;

  return (
    <>
      <AddTaskForm onAdd={addTask} inputRef={addInputRef} />

      {alertNotice && (
        <div className="banner banner-error" role="alert" key={alertNotice.key}>
          <p>{alertNotice.text}</p>
          <button
            type="button"
            className="button button-ghost button-small"
            onClick={() => setAlertNotice(null)}
          >
            Dismiss
          </button>
        </div>
      )}

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
                busy={busyIds.has(task.id)}
                onToggle={onToggle}
                onRename={onRename}
                onDelete={onDelete}
              />
            ))}
          </ul>
        )}

        {listError && (
          <p className="list-error" role="alert">
            Couldn&rsquo;t load tasks: {toActionError(listError).message}
          </p>
        )}

        {hasMore && (
          <div className="load-more">
            <button
              type="button"
              className="button button-secondary"
              onClick={() => loadMoreMutation.mutate(nextCursor)}
              disabled={loadMoreMutation.isPending}
              aria-busy={loadMoreMutation.isPending || undefined}
            >
              {loadMoreMutation.isPending ? "Loading…" : "Load more"}
            </button>
          </div>
        )}
      </section>

      <div className="toast-region" role="status" aria-live="polite" ref={toastRegionRef}>
        {toast && (
          <div
            className="toast"
            key={toast.key}
            onMouseEnter={() => setHoveredToast(toast.key)}
            onMouseLeave={() => setHoveredToast(null)}
            onFocus={() => setFocusedToast(toast.key)}
            onBlur={(e) => {
              if (!e.currentTarget.contains(e.relatedTarget)) setFocusedToast(null);
            }}
          >
            <span>{toast.text}</span>
            {toast.undo && (
              <button
                type="button"
                className="toast-action"
                aria-label={`Undo delete of “${toast.undo.title}”`}
                aria-disabled={toast.undo.restoring || undefined}
                onClick={() => onUndoDelete(toast.key)}
              >
                Undo
              </button>
            )}
            <button
              type="button"
              className="toast-close"
              aria-label="Dismiss notification"
              onClick={() => setToast(null)}
            >
              ×
            </button>
          </div>
        )}
      </div>
    </>
  );
}
