import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { log } from "@/lib/log";
import { TaskError } from "@/lib/tasks/errors";
import type { Task } from "@/lib/tasks/schema";

// The action's own work only: the session and the store are stand-ins, so no service is needed.
const store = vi.hoisted(() => ({ create: vi.fn(), list: vi.fn(), update: vi.fn(), remove: vi.fn() }));
vi.mock("next/headers", () => ({ headers: async () => new Headers() }));
vi.mock("@/lib/auth", () => ({ actionTasks: async () => store }));

const { createTaskAction, listTasksAction } = await import("@/app/actions");

const saved: Task = { id: 7, title: "Buy milk", done: false, version: 1, dueOn: null, createdAt: "2030-01-01T00:00:00.000Z", updatedAt: "2030-01-01T00:00:00.000Z" };

beforeEach(() => {
  vi.spyOn(log, "error").mockImplementation(() => {});
  vi.spyOn(log, "warn").mockImplementation(() => {});
  store.create.mockReset().mockResolvedValue(saved);
});
afterEach(() => vi.restoreAllMocks());

describe("createTaskAction(input, idempotencyKey)", () => {
  test("passes the submission's key on to the store", async () => {
    const key = "0b9c6f4e-3a57-4d8e-9c1f-2f6d1a7e5b40";
    expect(await createTaskAction({ title: "  Buy milk " }, key)).toEqual({ ok: true, task: saved });
    expect(store.create).toHaveBeenCalledWith({ title: "Buy milk" }, { idempotencyKey: key });
  });

  test("without a key the store is asked for a plain create", async () => {
    expect((await createTaskAction({ title: "Buy milk" })).ok).toBe(true);
    expect(store.create).toHaveBeenCalledWith({ title: "Buy milk" }, { idempotencyKey: undefined });
  });

  test.each(["!", "~".repeat(255), "a-Z_0.9:/+=", "x".repeat(255)])("key %j (1 to 255 of 0x21..0x7e) is accepted", async (key) => {
    expect((await createTaskAction({ title: "Buy milk" }, key)).ok).toBe(true);
    expect(store.create).toHaveBeenCalledWith({ title: "Buy milk" }, { idempotencyKey: key });
  });

  test.each<[string, unknown]>([
    ["empty", ""],
    ["256 characters", "k".repeat(256)],
    ["a space", "two words"],
    ["a tab", "a\tb"],
    ["DEL", "a\u007fb"],
    ["non-ASCII", "clé"],
    ["an emoji", "key-😀"],
    ["a number", 42],
    ["null", null],
    ["an object", { key: "abc" }],
  ])("a key that is %s is refused as validation_failed, and nothing is created", async (_what, key) => {
    const result = await createTaskAction({ title: "Buy milk" }, key);
    expect(result).toEqual({
      ok: false,
      error: {
        code: "validation_failed",
        message: "idempotencyKey must be 1 to 255 printable ASCII characters.",
        issues: [{ path: "idempotencyKey", message: "idempotencyKey must be 1 to 255 printable ASCII characters." }],
      },
    });
    expect(store.create).not.toHaveBeenCalled();
  });

  test("a driver error reaches the page as a fixed message, and the log gets the details", async () => {
    store.create.mockRejectedValue(Object.assign(new Error('column "secret_col" does not exist'), { code: "42703" }));
    const result = await createTaskAction({ title: "Buy milk" }, "key-1");
    expect(result).toEqual({ ok: false, error: { code: "internal_error", message: "Something went wrong. Try again." } });
    expect(JSON.stringify(result)).not.toMatch(/secret_col|42703/);
    expect(log.error).toHaveBeenCalledWith("action createTask failed", { err: expect.objectContaining({ code: "42703" }) });
  });

  test("the store's public refusals keep their code and message (the key reused for another title)", async () => {
    store.create.mockRejectedValue(new TaskError("idempotency_key_reused", "This idempotency key was used for a different task."));
    expect(await createTaskAction({ title: "Buy bread" }, "key-1")).toEqual({
      ok: false,
      error: { code: "idempotency_key_reused", message: "This idempotency key was used for a different task." },
    });
    expect(log.error).not.toHaveBeenCalled();
  });
});

test("every action maps failures the same way: an unavailable store is service_unavailable, logged at warn", async () => {
  store.list.mockRejectedValue(new TaskError("service_unavailable", "The database is unavailable. Try again shortly.", { cause: new Error("ECONNREFUSED") }));
  expect(await listTasksAction({})).toEqual({
    ok: false,
    error: { code: "service_unavailable", message: "The database is unavailable. Try again shortly." },
  });
  expect(log.warn).toHaveBeenCalledWith("action listTasks failed: service unavailable", { err: expect.any(Error) });
});
