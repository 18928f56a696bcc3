import "server-only";
import { isTaskError, TaskError } from "../tasks/errors";

// Network-level failures (postgres.js and Node) and SQLSTATE classes that mean "the database is
// not there for us right now" rather than "this query is wrong".
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "DB_TIMEOUT", // our client-side deadline (./guard.ts)
  "DB_BREAKER_OPEN", // refused at once: the database is known to be down
  "57014", // query_canceled: statement_timeout, the server-side deadline
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "3D000", // invalid_catalog_name: database missing
  "28000", // invalid_authorization_specification
  "28P01", // invalid_password
]);

function* causes(err: unknown): Generator<unknown> {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}

/** True when `err` (or anything in its cause chain) says the database is unreachable. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
    if (e instanceof AggregateError && e.errors.some(isDatabaseUnavailable)) return true;
  }
  return false;
}

// Failures that happen before a statement leaves this process: whatever it was, it did not run.
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  "DB_BREAKER_OPEN",
  "57P03",
  "53300",
  "3D000",
  "28000",
  "28P01",
]);

/**
 * Whether a statement that failed with `err` may still have committed: it went out, and then the
 * deadline passed or the connection dropped before the answer came. (A refused connection, an
 * open breaker, or a budget spent before sending: it never ran.)
 */
export function mayHaveCommitted(err: unknown): boolean {
  if (!isDatabaseUnavailable(err)) return false;
  for (const e of causes(err)) {
    if ((e as { notSent?: unknown }).notSent === true) return false;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NOT_SENT_CODES.has(code)) return false;
  }
  return true;
}

/** Turns a driver error into the TaskError a client may see; the original stays in `cause` for the log. */
export function toTaskError(err: unknown): TaskError {
  if (isTaskError(err)) return err;
  if (isDatabaseUnavailable(err)) {
    return new TaskError("service_unavailable", "The database is unavailable. Try again shortly.", { cause: err, retryAfterSeconds: retryAfterSecondsOf(err) });
  }
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    // check_violation, string too long, invalid byte sequence: input the zod schema should have caught.
    if (code === "23514" || code === "22001" || code === "22021" || code === "22P05") {
      return new TaskError("validation_failed", "The task was refused by a database constraint.", { cause: err });
    }
  }
  return new TaskError("internal_error", "Something went wrong. Try again.", { cause: err });
}

/** Retry-After for a 503: when the database breaker will let a statement through, else one second. */
function retryAfterSecondsOf(err: unknown): number {
  for (const e of causes(err)) {
    const ms = (e as { retryAfterMs?: unknown }).retryAfterMs;
    if (typeof ms === "number" && ms > 0) return Math.max(1, Math.ceil(ms / 1000));
  }
  return 1;
}
