import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { toTaskError } from "@/lib/db/errors";
import { INTERNAL_ERROR_MESSAGE, publicError, publicErrorBody } from "@/lib/http/publicError";
import { errorResponse } from "@/lib/http/responses";
import { log } from "@/lib/log";
import { STATUS_BY_CODE, TaskError, type TaskErrorCode } from "@/lib/tasks/errors";

/** What postgres.js throws for a broken query: the text names tables, columns and SQL. */
function driverError(): Error {
  return Object.assign(new Error('relation "tasks_secret_v2" does not exist'), {
    name: "PostgresError",
    code: "42P01",
    severity: "ERROR",
    query: "select * from tasks_secret_v2 where user_id = $1",
  });
}

const DRIVER_TEXT = /tasks_secret_v2|relation|select|42P01|PostgresError/;

let errorLog: ReturnType<typeof vi.spyOn>;
let warnLog: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  errorLog = vi.spyOn(log, "error").mockImplementation(() => {});
  warnLog = vi.spyOn(log, "warn").mockImplementation(() => {});
});
afterEach(() => vi.restoreAllMocks());

describe("publicError(): the one boundary for routes, actions and pages", () => {
  test("a driver error becomes internal_error with a fixed message; its text is only in the log", () => {
    const cause = driverError();
    const err = publicError(cause, "action createTask");

    expect(err.code).toBe("internal_error");
    expect(err.status).toBe(500);
    expect(err.message).toBe(INTERNAL_ERROR_MESSAGE);
    expect(JSON.stringify(publicErrorBody(err))).not.toMatch(DRIVER_TEXT);
    expect(errorLog).toHaveBeenCalledTimes(1);
    expect(errorLog).toHaveBeenCalledWith("action createTask failed", { err: cause });
    expect(warnLog).not.toHaveBeenCalled();
  });

  test("a driver error the store already mapped (toTaskError) keeps its public message and logs its cause", () => {
    const cause = driverError();
    const err = publicError(toTaskError(cause), "task page");

    expect(err.code).toBe("internal_error");
    expect(err.message).not.toMatch(DRIVER_TEXT);
    expect(errorLog).toHaveBeenCalledWith("task page failed", { err: cause });
  });

  test("service_unavailable is logged once at warn with its cause, and keeps its Retry-After seconds", () => {
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED", retryAfterMs: 2500 });
    const err = publicError(toTaskError(cause), "request");

    expect(err.code).toBe("service_unavailable");
    expect(err.retryAfterSeconds).toBe(3);
    expect(err.message).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
    expect(warnLog).toHaveBeenCalledTimes(1);
    expect(warnLog).toHaveBeenCalledWith("request failed: service unavailable", { err: cause });
    expect(errorLog).not.toHaveBeenCalled();
  });

  test.each<TaskErrorCode>(["validation_failed", "invalid_id", "unauthorized", "not_found", "precondition_failed", "rate_limited"])(
    "%s (a 4xx) passes through unchanged and is not logged",
    (code) => {
      const original = new TaskError(code, `Public words for ${code}.`);
      expect(publicError(original, "request")).toBe(original);
      expect(errorLog).not.toHaveBeenCalled();
      expect(warnLog).not.toHaveBeenCalled();
    },
  );

  test("an error caught at two boundaries is logged once", () => {
    const err = new TaskError("internal_error", INTERNAL_ERROR_MESSAGE, { cause: driverError() });
    publicError(err, "task page");
    publicError(err, "request");
    expect(errorLog).toHaveBeenCalledTimes(1);
  });

  test("the public body has the code, the message and the field issues, and nothing else", () => {
    const err = new TaskError("validation_failed", "Title must not be empty.", {
      issues: [{ path: "title", message: "Title must not be empty." }],
      cause: driverError(),
      retryAfterSeconds: 9,
    });
    expect(publicErrorBody(err)).toEqual({
      code: "validation_failed",
      message: "Title must not be empty.",
      issues: [{ path: "title", message: "Title must not be empty." }],
    });
    expect(publicErrorBody(new TaskError("not_found", "Task 7 not found."))).toEqual({ code: "not_found", message: "Task 7 not found." });
  });
});

describe("errorResponse(): the API's answers go through the same boundary", () => {
  test.each([
    ["not_found", 404],
    ["invalid_id", 400],
    ["validation_failed", 400],
    ["unauthorized", 401],
    ["forbidden", 403],
    ["precondition_failed", 412],
    ["payload_too_large", 413],
    ["unsupported_media_type", 415],
    ["idempotency_key_reused", 422],
    ["rate_limited", 429],
    ["service_unavailable", 503],
    ["internal_error", 500],
  ] as const)("%s is answered with %i and its code in the body", async (code, status) => {
    expect(STATUS_BY_CODE[code]).toBe(status);
    const res = errorResponse(new TaskError(code, "Public words."));
    expect(res.status).toBe(status);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toEqual({ error: { code, message: "Public words." } });
  });

  test("a driver error is a 500 whose body says nothing of it", async () => {
    const res = errorResponse(driverError());
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toMatch(DRIVER_TEXT);
    expect(JSON.parse(text)).toEqual({ error: { code: "internal_error", message: INTERNAL_ERROR_MESSAGE } });
    expect(errorLog).toHaveBeenCalledWith("request failed", { err: expect.objectContaining({ code: "42P01" }) });
  });

  test("Retry-After carries the error's seconds (rate limits and an unavailable database), and is absent otherwise", () => {
    expect(errorResponse(new TaskError("rate_limited", "Slow down.", { retryAfterSeconds: 42 })).headers.get("retry-after")).toBe("42");
    const down = errorResponse(toTaskError(Object.assign(new Error("boom"), { code: "57P03", retryAfterMs: 1200 })));
    expect(down.status).toBe(503);
    expect(down.headers.get("retry-after")).toBe("2");
    expect(errorResponse(new TaskError("not_found", "Gone.")).headers.get("retry-after")).toBeNull();
  });
});
