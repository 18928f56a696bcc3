"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import {
  batchTasksAction,
  createTaskAction,
  deleteTaskAction,
  restoreTaskAction,
  updateTaskAction,
} from "@/app/actions";
import type { LiveChange } from "@/lib/live/change";
import type { Task, TaskCounts, TaskPatch } from "@/lib/tasks/schema";
import { failed, isUnanswered, toActionError } from "./actionErrors";
import {
  addCounts,
  addOptimistic,
  confirmCreated,
  COUNTS_KEY,
  countsDelta,
  describeRefusal,
  findTask,
  insertTask,
  isView,
  latestVersion,
  mapTask,
  negateCounts,
  NO_COUNTS,
  optimisticTask,
  placeTask,
  quote,
  removeTask,
  TASKS_KEY,
  tasksNoun,
  type Position,
  type TasksData,
  type View,
} from "./taskList";

/** One create submission; every retry of it carries the same idempotency key. */
export type CreateVars = { title: string; done?: boolean; dueOn?: string | null; idempotencyKey: string };
type CreateContext = { tempId: number; delta: TaskCounts };
type UpdateVars = {
  id: number;
  /** For messages: the title as the person saw it. */
  title: string;
  patch: TaskPatch;
  /** Sent instead of the latest known version (an undo sends the version its action produced). */
  expectedVersion?: number;
  /** The caller words the failure itself (an undo): no alert from here. */
  quiet?: boolean;
  /** The task's state when no view has it loaded (an undo of a tick that took it out of the view): for the counts. */
  assumed?: Pick<Task, "done">;
};
type UpdateContext = { previous: Partial<Pick<Task, "title" | "done" | "dueOn">>; delta: TaskCounts };
/** Where a removed task sat in each view that showed it, to put it back if the write fails. */
type Removals = Array<{ key: readonly unknown[]; task: Task; position: Position }>;
type DeleteContext = { removed?: Task; removals: Removals; delta: TaskCounts };
/** "Mark all done" (complete) or "Clear completed" (delete) on the tasks loaded in the view. */
type BatchVars = { op: "complete" | "delete"; tasks: Task[]; idempotencyKey: string };
type BatchContext = { removals: Removals; previous: Map<number, boolean>; delta: TaskCounts };
export type BatchDone = { tasks: Task[]; ids: number[] };

/** A create or batch that got no answer is sent once more (same key, so the server does it once at most). */
const RETRIES = 1;
const RETRY_DELAY_MS = 500;

type Reports = {
  /** A write was refused or could not be sent: the sentence for the error banner. */
  onAlert: (text: string) => void;
};

/**
 * The page's writes: each applied to the lists at once (optimistically), sent, then confirmed or
 * taken back. Every cached view is kept by its own rules (a task completed in Active leaves it once
 * the server has it), and so are the counts: moved at once, and replaced by the server's whenever
 * a list is read with no write under way. Writes to one task run one after another, and each
 * sends the version the server last gave us, so a quick toggle-then-edit never trips over its own
 * optimistic-concurrency check.
 */
export function useWriteQueue({ onAlert }: Reports) {
  const queryClient = useQueryClient();

  /* ----- the lists: every cached view, each by its own rules ----- */

  const viewQueries = () => queryClient.getQueriesData<TasksData>({ queryKey: TASKS_KEY });
  const updateViews = (fn: (data: TasksData, view: View) => TasksData) => {
    for (const [key] of viewQueries()) {
      const view = key[1];
      if (isView(view)) queryClient.setQueryData<TasksData>(key, (d) => (d ? fn(d, view) : d));
    }
  };
  const findAnywhere = (id: number): Task | undefined => {
    for (const [, data] of viewQueries()) {
      const t = findTask(data, id);
      if (t) return t;
    }
    return undefined;
  };
  /** Takes a task out of every view, noting where it was in each. */
  const removeEverywhere = (id: number, removals: Removals) => {
    for (const [key, data] of viewQueries()) {
      if (!data) continue;
      const { data: without, removed, position } = removeTask(data, id);
      if (!removed || !position) continue;
      removals.push({ key, task: removed, position });
      queryClient.setQueryData<TasksData>(key, without);
    }
  };
  /** Puts back what removeEverywhere took, the last taken first, so every index is right again. */
  const putBack = (removals: Removals) => {
    for (const { key, task, position } of removals.slice().reverse()) {
      queryClient.setQueryData<TasksData>(key, (d) => (d ? insertTask(d, task, position) : d));
    }
  };
  const placeEverywhere = (task: Task) => updateViews((d, view) => placeTask(d, view, task));

  /* ----- counts: moved at once by each write, the server's whenever it can be trusted ----- */

  const adjustCounts = (delta: TaskCounts) =>
    queryClient.setQueryData<TaskCounts>(COUNTS_KEY, (c) => addCounts(c ?? NO_COUNTS, delta));

  /* ----- writes in flight, and the reread after a refusal ----- */

  const chains = useRef(new Map<number, Promise<unknown>>());
  const knownVersions = useRef(new Map<number, number>());
  const pending = useRef(new Map<number, number>());
  const inflight = useRef(0);
  /** Moves on at every write's start and end: a list read across a change can't vouch for the counts. */
  const seq = useRef(0);
  const needsResync = useRef(false);
  const tempIds = useRef(0);
  /** Deleted tasks: the version their delete left, so older news about them (from another device) can't bring them back. */
  const gone = useRef(new Map<number, number>());
  const resyncTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  /** After a refusal (or a read that crossed a write) the server may know something we don't: reread once everything settles. */
  const resyncWhenIdle = () => {
    if (needsResync.current && inflight.current === 0) {
      needsResync.current = false;
      void queryClient.invalidateQueries({ queryKey: TASKS_KEY });
    }
  };
  const writeStarted = () => {
    inflight.current++;
    seq.current++;
  };
  const writeEnded = () => {
    inflight.current--;
    seq.current++;
    resyncWhenIdle();
  };
  const tracked = async <T>(fn: () => Promise<T>): Promise<T> => {
    writeStarted();
    try {
      return await fn();
    } finally {
      writeEnded();
    }
  };

  const after = (previous: Promise<unknown> | undefined) => (previous ?? Promise.resolve()).catch(() => undefined);
  /** Runs `fn` once every earlier write to any of `ids` has settled, and holds later ones until it has. */
  const serial = <T>(ids: number[], fn: () => Promise<T>): Promise<T> => {
    const next = Promise.all(ids.map((id) => after(chains.current.get(id)))).then(fn);
    for (const id of ids) chains.current.set(id, next);
    next
      .finally(() => {
        for (const id of ids) if (chains.current.get(id) === next) chains.current.delete(id);
      })
      .catch(() => undefined);
    return next;
  };

  /** A task this page deleted: its delete made the version after the last one known. */
  const forget = (id: number, version: number) => {
    gone.current.set(id, Math.max(version, knownVersions.current.get(id) ?? 0) + 1);
    knownVersions.current.delete(id);
  };

  /* ----- changes made elsewhere (another tab, device or program), from the live stream ----- */

  /** Rereads the lists (and with them the counts) once no write of this page is under way; bursts share one reread. */
  const resyncSoon = () => {
    needsResync.current = true;
    clearTimeout(resyncTimer.current);
    resyncTimer.current = setTimeout(resyncWhenIdle, 250);
  };
  /**
   * Applies changes by version: one no newer than what the page already has (its own write coming
   * back, or old news) is dropped, so the page never goes backwards. While a write of this page is
   * under way nothing is applied (its optimistic state must not be overwritten): the lists are
   * reread once it settles. A reread follows every applied change too, for the counts (and for a
   * change to a task beyond the loaded pages).
   */
  const applyRemote = (changes: LiveChange[]) => {
    if (inflight.current > 0) {
      resyncSoon();
      return;
    }
    let applied = false;
    for (const change of changes) {
      const known = Math.max(findAnywhere(change.id)?.version ?? 0, knownVersions.current.get(change.id) ?? 0, gone.current.get(change.id) ?? 0);
      if (change.version <= known) continue;
      if (change.op === "delete") {
        updateViews((d) => removeTask(d, change.id).data);
        knownVersions.current.delete(change.id);
        gone.current.set(change.id, change.version);
      } else if (change.task && change.task.id === change.id && change.task.version === change.version) {
        gone.current.delete(change.id);
        knownVersions.current.set(change.id, change.version);
        placeEverywhere(change.task);
      } else {
        continue;
      }
      applied = true;
    }
    if (applied) resyncSoon();
  };

  const expectedVersionFor = (id: number) => latestVersion(findAnywhere(id)?.version, knownVersions.current.get(id));
  const noteVersion = (task: Task) => {
    const known = knownVersions.current.get(task.id) ?? 0;
    if (task.version > known) knownVersions.current.set(task.id, task.version);
  };

  // Rows with a write in flight are marked aria-busy (and say "Saving…" if it takes a moment).
  const [busyIds, setBusyIds] = useState<ReadonlySet<number>>(() => new Set());
  const begin = (ids: number[]) => {
    writeStarted();
    for (const id of ids) pending.current.set(id, (pending.current.get(id) ?? 0) + 1);
    setBusyIds((s) => (ids.every((id) => s.has(id)) ? s : new Set([...s, ...ids])));
  };
  const end = (ids: number[]) => {
    const idle: number[] = [];
    for (const id of ids) {
      const n = (pending.current.get(id) ?? 1) - 1;
      if (n > 0) pending.current.set(id, n);
      else {
        pending.current.delete(id);
        idle.push(id);
      }
    }
    if (idle.length > 0) {
      setBusyIds((s) => {
        if (!idle.some((id) => s.has(id))) return s;
        const next = new Set(s);
        for (const id of idle) next.delete(id);
        return next;
      });
    }
    writeEnded();
  };
  const othersPending = (id: number) => (pending.current.get(id) ?? 0) > 1;

  /**
   * Stops a reread in flight from overwriting an optimistic change with older data (a view still
   * loading keeps loading). A reread stopped here is made again once the writes have settled.
   */
  const pauseReads = () => {
    const shown = (q: { state: { data: unknown; fetchStatus: string } }) => q.state.data !== undefined;
    const stopping = queryClient
      .getQueryCache()
      .findAll({ queryKey: TASKS_KEY })
      .some((q) => shown(q) && q.state.fetchStatus === "fetching");
    if (stopping) needsResync.current = true;
    return queryClient.cancelQueries({ queryKey: TASKS_KEY, predicate: shown });
  };

  /* ----- create ----- */

  const createMutation = useMutation<Task, Error, CreateVars, CreateContext>({
    mutationFn: async ({ title, done, dueOn, idempotencyKey }) => {
      const input = { title, ...(done === undefined ? {} : { done }), ...(dueOn == null ? {} : { dueOn }) };
      const result = await createTaskAction(input, idempotencyKey);
      if (!result.ok) throw failed(result.error);
      return result.task;
    },
    retry: (failures, err) => failures < RETRIES && isUnanswered(err),
    retryDelay: RETRY_DELAY_MS,
    onMutate: async ({ title, done, dueOn }) => {
      writeStarted();
      await pauseReads();
      const tempId = -++tempIds.current;
      const temp = optimisticTask(tempId, title, done ?? false, new Date().toISOString(), dueOn ?? null);
      for (const [key] of viewQueries()) {
        const view = key[1];
        if (isView(view)) queryClient.setQueryData<TasksData>(key, (d) => addOptimistic(d, view, temp));
      }
      const delta = countsDelta(null, temp);
      adjustCounts(delta);
      return { tempId, delta };
    },
    onSuccess: (task, _vars, ctx) => {
      noteVersion(task);
      updateViews((d, view) => confirmCreated(d, view, ctx.tempId, task));
    },
    onError: (_err, _vars, ctx) => {
      if (!ctx) return;
      updateViews((d) => removeTask(d, ctx.tempId).data);
      adjustCounts(negateCounts(ctx.delta));
    },
    onSettled: () => writeEnded(),
  });

  /* ----- update: a tick, an edit, or the undo of one ----- */

  const updateMutation = useMutation<Task, Error, UpdateVars, UpdateContext>({
    mutationFn: ({ id, patch, expectedVersion }) =>
      serial([id], async () => {
        const result = await updateTaskAction({ id, patch, expectedVersion: expectedVersion ?? expectedVersionFor(id) });
        if (!result.ok) throw failed(result.error);
        noteVersion(result.task);
        return result.task;
      }),
    onMutate: async ({ id, patch, assumed }) => {
      await pauseReads();
      const current = findAnywhere(id);
      const previous: UpdateContext["previous"] = {};
      if (current) {
        if (patch.title !== undefined) previous.title = current.title;
        if (patch.done !== undefined) previous.done = current.done;
        if (patch.dueOn !== undefined) previous.dueOn = current.dueOn;
        updateViews((d) => mapTask(d, id, (t) => ({ ...t, ...patch })));
      }
      const before = current ?? assumed;
      const delta = before && patch.done !== undefined && patch.done !== before.done ? countsDelta(before, { done: patch.done }) : NO_COUNTS;
      adjustCounts(delta);
      return { previous, delta };
    },
    onSuccess: (saved, { id }) => {
      // While another write to this task is still in flight, keep its optimistic fields.
      if (othersPending(id)) updateViews((d) => mapTask(d, id, (t) => ({ ...t, version: Math.max(t.version, saved.version) })));
      else placeEverywhere(saved);
    },
    onError: (err, { id, title, patch, quiet }, ctx) => {
      const error = toActionError(err);
      if (error.code === "not_found") {
        updateViews((d) => removeTask(d, id).data);
      } else if (ctx) {
        updateViews((d) => mapTask(d, id, (t) => ({ ...t, ...ctx.previous })));
      }
      if (ctx) adjustCounts(negateCounts(ctx.delta));
      if (error.code !== "validation_failed" && error.code !== "invalid_id") needsResync.current = true;
      if (quiet) return;
      const what = patch.title !== undefined ? `save ${quote(patch.title)}` : `update ${quote(title)}`;
      onAlert(`Couldn't ${what}: ${describeRefusal(error, "update")}`);
    },
    onSettled: (_data, _err, { id }) => end([id]),
  });

  /* ----- delete ----- */

  const deleteMutation = useMutation<Task | null, Error, { task: Task }, DeleteContext>({
    mutationFn: ({ task }) =>
      serial([task.id], async () => {
        const result = await deleteTaskAction({ id: task.id, expectedVersion: expectedVersionFor(task.id) });
        if (result.ok) return task;
        // Already gone: the end state is what the person asked for (and the counts get reread).
        if (result.error.code === "not_found") return null;
        throw failed(result.error);
      }),
    onMutate: async ({ task }) => {
      await pauseReads();
      const removals: Removals = [];
      const row = findAnywhere(task.id) ?? task;
      removeEverywhere(task.id, removals);
      const delta = countsDelta(row, null);
      adjustCounts(delta);
      return { removed: removals[0]?.task ?? row, removals, delta };
    },
    onSuccess: (result, { task }) => {
      updateViews((d) => removeTask(d, task.id).data);
      forget(task.id, task.version);
      if (result === null) needsResync.current = true;
    },
    onError: (err, { task }, ctx) => {
      if (ctx) {
        putBack(ctx.removals);
        adjustCounts(negateCounts(ctx.delta));
      }
      needsResync.current = true;
      onAlert(`Couldn't delete ${quote(task.title)}: ${describeRefusal(toActionError(err), "delete")}`);
    },
    onSettled: (_data, _err, { task }) => end([task.id]),
  });

  /* ----- Mark all done, Clear completed ----- */

  const batchMutation = useMutation<BatchDone, Error, BatchVars, BatchContext>({
    mutationFn: ({ op, tasks, idempotencyKey }) => {
      const ids = tasks.map((t) => t.id);
      return serial(ids, async () => {
        const result = await batchTasksAction({ op, ids }, idempotencyKey);
        if (!result.ok) throw failed(result.error);
        return "tasks" in result ? { tasks: result.tasks, ids } : { tasks: [], ids: result.ids };
      });
    },
    // A retry is the same batch under the same key: the server does it once at most.
    retry: (failures, err) => failures < RETRIES && isUnanswered(err),
    retryDelay: RETRY_DELAY_MS,
    onMutate: async ({ op, tasks }) => {
      await pauseReads();
      const removals: Removals = [];
      const previous = new Map<number, boolean>();
      const deltas: TaskCounts[] = [];
      for (const task of tasks) {
        const current = findAnywhere(task.id) ?? task;
        previous.set(task.id, current.done);
        if (op === "complete") {
          if (!current.done) deltas.push(countsDelta(current, { done: true }));
          updateViews((d) => mapTask(d, task.id, (t) => ({ ...t, done: true })));
        } else {
          deltas.push(countsDelta(current, null));
          removeEverywhere(task.id, removals);
        }
      }
      const delta = addCountsSigned(deltas);
      adjustCounts(delta);
      return { removals, previous, delta };
    },
    onSuccess: ({ tasks, ids }, { op, tasks: sent }) => {
      if (op === "complete") {
        for (const task of tasks) noteVersion(task);
        for (const task of tasks) placeEverywhere(task);
      } else {
        for (const task of sent) forget(task.id, task.version);
        updateViews((d) => ids.reduce((acc, id) => removeTask(acc, id).data, d));
      }
    },
    onError: (err, { op, tasks }, ctx) => {
      const error = toActionError(err);
      if (ctx) {
        if (op === "complete") {
          for (const [id, done] of ctx.previous) updateViews((d) => mapTask(d, id, (t) => ({ ...t, done })));
        } else {
          putBack(ctx.removals);
        }
        adjustCounts(negateCounts(ctx.delta));
      }
      needsResync.current = true;
      const what = op === "complete" ? `mark ${tasksNoun(tasks.length)} done` : `clear ${tasksNoun(tasks.length, "completed")}`;
      const why =
        error.code === "not_found"
          ? "one of them was changed or deleted somewhere else, so nothing was changed. The latest list is shown now."
          : error.message;
      onAlert(`Couldn't ${what}: ${why}`);
    },
    onSettled: (_data, _err, { tasks }) => end(tasks.map((t) => t.id)),
  });

  /* ----- the undo of a batch, and of a delete: not optimistic, the server's answer is shown ----- */

  const undoBatch = (op: "reopen" | "restore", ids: number[], idempotencyKey: string): Promise<Task[]> =>
    tracked(() =>
      serial(ids, async () => {
        const result = await batchTasksAction({ op, ids }, idempotencyKey);
        if (!result.ok) {
          needsResync.current = true;
          throw failed(result.error);
        }
        const tasks = "tasks" in result ? result.tasks : [];
        const deltas = tasks.map((t) => {
          // A reopen undoes a Mark all done: the tasks were done, whether or not a view still shows them.
          const before = op === "restore" ? null : (findAnywhere(t.id) ?? { done: true });
          return countsDelta(before, t);
        });
        for (const task of tasks) noteVersion(task);
        for (const task of tasks) placeEverywhere(task);
        adjustCounts(addCountsSigned(deltas));
        return tasks;
      }),
    );

  // Marked busy at once (not in the async onMutate) so the row says so before the next paint.
  const update = (vars: UpdateVars): Promise<Task> => {
    begin([vars.id]);
    return updateMutation.mutateAsync(vars);
  };

  return {
    busyIds,
    /** Resolves to the saved task; rejects with the refusal (see toActionError). */
    create: (vars: CreateVars) => createMutation.mutateAsync(vars),
    /** Resolves to the saved task; a refusal is alerted here and rejects. */
    toggle: (task: Task, done: boolean) => update({ id: task.id, title: task.title, patch: { done } }),
    /** A title and/or due-date change; resolves to the saved task; a refusal is alerted here and rejects. */
    edit: (task: Task, patch: TaskPatch) => update({ id: task.id, title: task.title, patch }),
    /**
     * The undo of a tick or an edit: `patch` puts the old values back. With `expectedVersion` it
     * applies only if nothing changed the task since (else a precondition_failed refusal);
     * `assumed` is its state should no view have it loaded. Quiet: the caller words a refusal.
     */
    revert: (id: number, title: string, patch: TaskPatch, options: { expectedVersion?: number; assumed?: Pick<Task, "done"> } = {}) =>
      update({ id, title, patch, ...options, quiet: true }),
    /** Resolves to the row as it left the list, or null when the task was already gone; a refusal is alerted here and rejects. */
    remove: (task: Task): Promise<Task | null> => {
      begin([task.id]);
      return deleteMutation.mutateAsync({ task });
    },
    /** One batch call for these tasks (Mark all done, Clear completed); a refusal is alerted here and rejects. */
    batch: (op: "complete" | "delete", tasks: Task[], idempotencyKey: string): Promise<BatchDone> => {
      const ids = tasks.map((t) => t.id);
      begin(ids);
      return batchMutation.mutateAsync({ op, tasks, idempotencyKey });
    },
    /** The undo of a batch: reopen what Mark all done completed, restore what Clear completed deleted. */
    undoBatch,
    /**
     * Undo of a delete: the same task back from the server (same id, next version), put back in
     * its own place in every view it belongs to. Every try of one undo sends the same key.
     */
    restore: (id: number, idempotencyKey: string): Promise<Task> =>
      tracked(() =>
        serial([id], async () => {
          const result = await restoreTaskAction({ id }, idempotencyKey);
          if (!result.ok) {
            needsResync.current = true;
            throw failed(result.error);
          }
          noteVersion(result.task);
          placeEverywhere(result.task);
          adjustCounts(countsDelta(null, result.task));
          return result.task;
        }),
      ),
    /** Changes made elsewhere, from the live stream: applied by version, then the lists are reread. */
    applyRemote,
    /** The live stream (re)connected or may have missed changes: reread the lists once idle. */
    resync: resyncSoon,
    /** Versions seen in a page read outside react-query's own refetch (Load more). */
    noteVersions: (tasks: Task[]) => tasks.forEach(noteVersion),
    /** Taken as a list read starts; give it back with the read's counts. */
    readToken: () => seq.current,
    /**
     * A list read's counts: the page's from now on, unless a write started or ended while it was
     * read (then the list is reread once the writes have settled, and that read's counts count).
     */
    adoptCounts: (counts: TaskCounts, token: number) => {
      if (token === seq.current && inflight.current === 0) {
        queryClient.setQueryData<TaskCounts>(COUNTS_KEY, counts);
        return;
      }
      needsResync.current = true;
      // After the read's own result is in the cache, not in the middle of it.
      setTimeout(resyncWhenIdle, 0);
    },
  };
}

/** Deltas summed as they are (negative parts kept): addCounts clamps, which only the shown counts want. */
function addCountsSigned(deltas: TaskCounts[]): TaskCounts {
  return deltas.reduce((a, d) => ({ all: a.all + d.all, open: a.open + d.open, done: a.done + d.done }), NO_COUNTS);
}
