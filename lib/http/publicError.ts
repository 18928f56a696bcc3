import "server-only";
import { log } from "../log";
import { isTaskError, TaskError, type TaskErrorCode, type ValidationIssue } from "../tasks/errors";

/**
 * THE error boundary for everything that answers a client: route handlers (errorResponse in
 * ./responses.ts), server actions (app/actions.ts) and server-rendered pages (app/page.tsx). Each
 * turns whatever it caught into a public TaskError here, so every failure is logged the same way
 * and no driver text, stack or SQL ever reaches a browser.
 */

/** What a client sees of a failure: a stable code, a fixed message, and which fields were wrong. */
export type PublicError = { code: TaskErrorCode; message: string; issues?: ValidationIssue[] };

export const INTERNAL_ERROR_MESSAGE = "Something went wrong. Try again.";

// An error can cross two boundaries (a page rendering a helper that already reported it): one log line per failure.
const reported = new WeakSet<object>();

/**
 * The public TaskError for anything thrown. A TaskError passes through unchanged (its message is
 * public by design, its Retry-After kept); anything else becomes `internal_error` with a fixed
 * message, the original kept as `cause`. Logs once, with `context` naming where it was caught:
 * `internal_error` at error, `service_unavailable` at warn (each with its cause), 4xx not at all
 * (the caller's mistake, already answered).
 */
export function publicError(err: unknown, context: string): TaskError {
  const taskError = isTaskError(err) ? err : new TaskError("internal_error", INTERNAL_ERROR_MESSAGE, { cause: err });
  if (!reported.has(taskError)) {
    reported.add(taskError);
    const cause = taskError.cause ?? err;
    if (taskError.code === "internal_error") log.error(`${context} failed`, { err: cause });
    // Refused at once by an open breaker: the breaker logged the outage when it opened.
    else if (taskError.code === "service_unavailable" && !refusedByBreaker(cause)) log.warn(`${context} failed: service unavailable`, { err: cause });
  }
  return taskError;
}

function refusedByBreaker(err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === "object" && e !== null && depth < 8; depth++, e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === "DB_BREAKER_OPEN") return true;
  }
  return false;
}

/** The body every client gets for `err`: only its code, message and field issues, as plain strings. */
export function publicErrorBody(err: TaskError): PublicError {
  return {
    code: err.code,
    message: err.message,
    ...(err.issues ? { issues: err.issues.map((i) => ({ path: String(i.path), message: String(i.message) })) } : {}),
  };
}
