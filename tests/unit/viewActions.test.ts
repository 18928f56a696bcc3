import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { log } from "@/lib/log";
import { TaskError } from "@/lib/tasks/errors";
import type { Task } from "@/lib/tasks/schema";

// The page's list and batch actions, their own work only: the session and the store are stand-ins
// (as in createTaskAction.test.ts), so no service is needed.
const store = vi.hoisted(() => ({ list: vi.fn(), batch: vi.fn(), create: vi.fn(), update: vi.fn() }));
vi.mock("next/headers", () => ({ headers: async () => new Headers() }));
vi.mock("@/lib/auth", () => ({ actionTasks: async () => store }));

const { batchTasksAction, createTaskAction, listTasksAction, updateTaskAction } = await import("@/app/actions");

const stamp = "2030-01-01T00:00:00.000Z";
const saved: Task = { id: 7, title: "Buy milk", done: false, version: 1, dueOn: "2030-01-09", createdAt: stamp, updatedAt: stamp };
const counts = { all: 42, open: 12, done: 30 };

beforeEach(() => {
  vi.spyOn(log, "error").mockImplementation(() => {});
  vi.spyOn(log, "warn").mockImplementation(() => {});
  store.list.mockReset().mockResolvedValue({ tasks: [{ ...saved, extra: "not for the browser" }], nextCursor: "77309411335", counts: { ...counts, x: 1 }, cache: "HIT" });
  store.batch.mockReset();
  store.create.mockReset().mockResolvedValue(saved);
  store.update.mockReset().mockResolvedValue(saved);
});
afterEach(() => vi.restoreAllMocks());

describe("listTasksAction({ cursor, status, sort })", () => {
  test("asks the store for the view's page and answers with its tasks (due date included), cursor and whole counts", async () => {
    const result = await listTasksAction({ cursor: "77309411335", status: "open", sort: "due" });
    expect(store.list).toHaveBeenCalledWith({ limit: 50, cursor: 77309411335, status: "open", sort: "due" });
    expect(result).toEqual({ ok: true, tasks: [saved], nextCursor: "77309411335", counts });
  });

  test("the first page of the default view needs nothing", async () => {
    expect((await listTasksAction({})).ok).toBe(true);
    expect(store.list).toHaveBeenCalledWith({ limit: 50, cursor: undefined, status: undefined, sort: undefined });
    expect((await listTasksAction({ cursor: null, status: "done" })).ok).toBe(true);
    expect(store.list).toHaveBeenLastCalledWith({ limit: 50, cursor: undefined, status: "done", sort: undefined });
  });

  test.each<[string, unknown]>([
    ["an unknown status", { status: "later" }],
    ["an unknown sort", { sort: "title" }],
    ["a cursor that is not one", { cursor: "12abc" }],
    ["a field of its own", { limit: 500 }],
  ])("%s is refused as validation_failed before the store is asked", async (_what, input) => {
    const result = await listTasksAction(input);
    expect(result).toMatchObject({ ok: false, error: { code: "validation_failed" } });
    expect(store.list).not.toHaveBeenCalled();
  });
});

describe("batchTasksAction({ op, ids }, idempotencyKey)", () => {
  test("complete answers with the tasks as they now are; the key goes to the store", async () => {
    store.batch.mockResolvedValue({ tasks: [{ ...saved, done: true, version: 2, secret: 1 }] });
    const result = await batchTasksAction({ op: "complete", ids: [7] }, "0b9c6f4e-3a57-4d8e-9c1f-2f6d1a7e5b40");
    expect(store.batch).toHaveBeenCalledWith({ op: "complete", ids: [7] }, { idempotencyKey: "0b9c6f4e-3a57-4d8e-9c1f-2f6d1a7e5b40" });
    expect(result).toEqual({ ok: true, tasks: [{ ...saved, done: true, version: 2 }] });
  });

  test("delete answers with the ids it deleted", async () => {
    store.batch.mockResolvedValue({ ids: [3, 4] });
    expect(await batchTasksAction({ op: "delete", ids: [3, 4] })).toEqual({ ok: true, ids: [3, 4] });
    expect(store.batch).toHaveBeenCalledWith({ op: "delete", ids: [3, 4] }, { idempotencyKey: undefined });
  });

  test("one id that isn't the caller's (or isn't live) refuses the whole batch as not_found, with the store's message", async () => {
    store.batch.mockRejectedValue(new TaskError("not_found", "Task 99 not found."));
    expect(await batchTasksAction({ op: "reopen", ids: [7, 99] }, "key-1")).toEqual({
      ok: false,
      error: { code: "not_found", message: "Task 99 not found." },
    });
  });

  test.each<[string, unknown, unknown]>([
    ["an unknown op", { op: "archive", ids: [1] }, undefined],
    ["no ids", { op: "complete", ids: [] }, undefined],
    ["an id that is not a task id", { op: "delete", ids: [1, -2] }, undefined],
    ["a key with a space", { op: "delete", ids: [1] }, "two words"],
  ])("%s is refused as validation_failed, and nothing is sent", async (_what, input, key) => {
    expect(await batchTasksAction(input, key)).toMatchObject({ ok: false, error: { code: "validation_failed" } });
    expect(store.batch).not.toHaveBeenCalled();
  });
});

describe("create and update carry the due date", () => {
  test("a new task with a due date, and a patch that only clears one", async () => {
    expect(await createTaskAction({ title: "Buy milk", dueOn: "2030-01-09" }, "key-2")).toEqual({ ok: true, task: saved });
    expect(store.create).toHaveBeenCalledWith({ title: "Buy milk", dueOn: "2030-01-09" }, { idempotencyKey: "key-2" });
    expect((await updateTaskAction({ id: 7, patch: { dueOn: null }, expectedVersion: 1 })).ok).toBe(true);
    expect(store.update).toHaveBeenCalledWith({ id: 7, patch: { dueOn: null }, expectedVersion: 1 });
  });

  test("a date that is not a real one is refused before the store is asked", async () => {
    expect(await updateTaskAction({ id: 7, patch: { dueOn: "2030-02-30" } })).toMatchObject({ ok: false, error: { code: "validation_failed" } });
    expect(store.update).not.toHaveBeenCalled();
  });
});
