"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { createTaskAction, deleteTaskAction, restoreTaskAction, updateTaskAction } from "@/app/actions";
import type { Task, TaskPatch } from "@/lib/tasks/schema";
import { failed, isUnanswered, toActionError } from "./actionErrors";
import {
  confirmCreated,
  describeRefusal,
  findTask,
  insertTask,
  latestVersion,
  mapTask,
  optimisticTask,
  prependTask,
  quote,
  removeTask,
  TASKS_KEY,
  type Position,
  type TasksData,
} from "./taskList";

/** One create submission; every retry of it carries the same idempotency key. */
export type CreateVars = { title: string; done?: boolean; idempotencyKey: string };
type CreateContext = { tempId: number };
type UpdateVars = { task: Task; patch: TaskPatch };
type UpdateContext = { previous: Partial<Pick<Task, "title" | "done">> };
type DeleteVars = { task: Task };
type DeleteContext = { removed?: Task; position?: Position };

/** A create that got no answer is sent once more (same key, so the server makes one task at most). */
const CREATE_RETRIES = 1;
const CREATE_RETRY_DELAY_MS = 500;

type Reports = {
  /** A write was refused or could not be sent: the sentence for the error banner. */
  onAlert: (text: string) => void;
  /** A delete went through: the row as it left the list, or null when the task was already gone. */
  onDeleted: (last: Task | null) => void;
};

/**
 * The page's writes: each applied to the list at once (optimistically), sent, then confirmed or
 * taken back. Writes to one task run one after another, and each sends the version the server last
 * gave us, so a quick toggle-then-edit never trips over its own optimistic-concurrency check.
 */
export function useWriteQueue({ onAlert, onDeleted }: Reports) {
  const queryClient = useQueryClient();
  const getData = () => queryClient.getQueryData<TasksData>(TASKS_KEY);
  const setData = (fn: (d: TasksData) => TasksData) =>
    queryClient.setQueryData<TasksData>(TASKS_KEY, (d) => (d ? fn(d) : d));

  const chains = useRef(new Map<number, Promise<unknown>>());
  const knownVersions = useRef(new Map<number, number>());
  const pending = useRef(new Map<number, number>());
  const needsResync = useRef(false);
  const tempIds = useRef(0);

  const serial = <T>(id: number, fn: () => Promise<T>): Promise<T> => {
    const previous = chains.current.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    chains.current.set(id, next);
    next
      .finally(() => {
        if (chains.current.get(id) === next) chains.current.delete(id);
      })
      .catch(() => undefined);
    return next;
  };

  const expectedVersionFor = (id: number) => latestVersion(findTask(getData(), id)?.version, knownVersions.current.get(id));
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

  const createMutation = useMutation<Task, Error, CreateVars, CreateContext>({
    mutationFn: async ({ title, done, idempotencyKey }) => {
      const result = await createTaskAction(done === undefined ? { title } : { title, done }, idempotencyKey);
      if (!result.ok) throw failed(result.error);
      return result.task;
    },
    retry: (failures, err) => failures < CREATE_RETRIES && isUnanswered(err),
    retryDelay: CREATE_RETRY_DELAY_MS,
    onMutate: async ({ title, done }) => {
      await pauseReads();
      const tempId = -++tempIds.current;
      queryClient.setQueryData<TasksData>(TASKS_KEY, (d) =>
        prependTask(d, optimisticTask(tempId, title, done ?? false, new Date().toISOString())),
      );
      return { tempId };
    },
    onSuccess: (task, _vars, ctx) => {
      noteVersion(task);
      setData((d) => confirmCreated(d, ctx.tempId, task));
    },
    onError: (_err, _vars, ctx) => {
      if (ctx) setData((d) => removeTask(d, ctx.tempId).data);
    },
    onSettled: () => resyncWhenIdle(),
  });

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
      const current = findTask(getData(), task.id) ?? task;
      const previous: UpdateContext["previous"] = {};
      if (patch.title !== undefined) previous.title = current.title;
      if (patch.done !== undefined) previous.done = current.done;
      setData((d) => mapTask(d, task.id, (t) => ({ ...t, ...patch })));
      return { previous };
    },
    onSuccess: (saved, { task }) => {
      // While another write to this task is still in flight, keep its optimistic fields.
      setData((d) =>
        mapTask(d, task.id, (t) => (othersPending(task.id) ? { ...t, version: Math.max(t.version, saved.version) } : saved)),
      );
    },
    onError: (err, { task, patch }, ctx) => {
      const error = toActionError(err);
      const what = patch.title !== undefined ? `save ${quote(patch.title)}` : `update ${quote(task.title)}`;
      if (error.code === "not_found") {
        setData((d) => removeTask(d, task.id).data);
      } else if (ctx) {
        setData((d) => mapTask(d, task.id, (t) => ({ ...t, ...ctx.previous })));
      }
      if (error.code !== "validation_failed" && error.code !== "invalid_id") needsResync.current = true;
      onAlert(`Couldn't ${what}: ${describeRefusal(error, "update")}`);
    },
    onSettled: (_data, _err, { task }) => {
      end(task.id);
      resyncWhenIdle();
    },
  });

  const deleteMutation = useMutation<void, Error, DeleteVars, DeleteContext>({
    mutationFn: ({ task }) =>
      serial(task.id, async () => {
        const result = await deleteTaskAction({ id: task.id, expectedVersion: expectedVersionFor(task.id) });
        if (!result.ok) throw failed(result.error);
      }),
    onMutate: async ({ task }) => {
      await pauseReads();
      let ctx: DeleteContext = {};
      setData((d) => {
        const { data, removed, position } = removeTask(d, task.id);
        ctx = { removed, position };
        return data;
      });
      return ctx;
    },
    onSuccess: (_v, { task }, ctx) => {
      setData((d) => removeTask(d, task.id).data);
      knownVersions.current.delete(task.id);
      // The row as it was when it left the list, so optimistic edits made just before count too.
      onDeleted(ctx?.removed ?? task);
    },
    onError: (err, { task }, ctx) => {
      const error = toActionError(err);
      // Already gone: the end state is what the person asked for.
      if (error.code === "not_found") return onDeleted(null);
      if (ctx?.removed && ctx.position) {
        const { removed, position } = ctx;
        setData((d) => insertTask(d, removed, position));
      }
      needsResync.current = true;
      onAlert(`Couldn't delete ${quote(task.title)}: ${describeRefusal(error, "delete")}`);
    },
    onSettled: (_data, _err, { task }) => {
      end(task.id);
      resyncWhenIdle();
    },
  });

  // Marked busy at once (not in the async onMutate) so the row says so before the next paint.
  return {
    busyIds,
    /** Resolves to the saved task; rejects with the refusal (see toActionError). */
    create: createMutation.mutateAsync,
    toggle: (task: Task, done: boolean) => {
      begin(task.id);
      updateMutation.mutate({ task, patch: { done } });
    },
    rename: (task: Task, title: string) => {
      begin(task.id);
      updateMutation.mutate({ task, patch: { title } });
    },
    remove: (task: Task) => {
      begin(task.id);
      deleteMutation.mutate({ task });
    },
    /**
     * Undo of a delete: the same task back from the server (same id, next version), then the list
     * reread so it reappears in its own place. Every try of one undo sends the same key.
     */
    restore: async (id: number, idempotencyKey: string): Promise<Task> => {
      const result = await restoreTaskAction({ id }, idempotencyKey);
      if (!result.ok) throw failed(result.error);
      noteVersion(result.task);
      await queryClient.invalidateQueries({ queryKey: TASKS_KEY });
      return result.task;
    },
    /** Versions seen in a page read outside react-query's own refetch (Load more). */
    noteVersions: (tasks: Task[]) => tasks.forEach(noteVersion),
  };
}
