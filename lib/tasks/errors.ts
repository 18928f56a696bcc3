// No `import "server-only"`: nothing here is secret, and client code may name the same codes.

/**
 * The one error type the store and the HTTP layer share. Each code has a fixed HTTP status and a
 * public message; driver text and stacks never leave the server (they go to the log).
 */
export type TaskErrorCode =
  | "invalid_id"
  | "validation_failed"
  | "invalid_json"
  | "invalid_url"
  | "unauthorized"
  | "forbidden"
  | "rate_limited"
  | "payload_too_large"
  | "unsupported_media_type"
  | "not_found"
  | "method_not_allowed"
  | "request_timeout"
  | "request_aborted"
  | "conflict"
  | "precondition_failed"
  | "idempotency_key_reused"
  | "service_unavailable"
  | "internal_error";

export const STATUS_BY_CODE: Record<TaskErrorCode, number> = {
  invalid_id: 400,
  validation_failed: 400,
  invalid_json: 400,
  invalid_url: 400,
  unauthorized: 401,
  forbidden: 403,
  rate_limited: 429,
  payload_too_large: 413,
  unsupported_media_type: 415,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  /** The client went away before its body arrived: nobody reads this answer; it is logged at info and counted as a 4xx. */
  request_aborted: 400,
  conflict: 409,
  precondition_failed: 412,
  idempotency_key_reused: 422,
  service_unavailable: 503,
  internal_error: 500,
};

export type ValidationIssue = { path: string; message: string };

// The store lives on globalThis (opened by instrumentation.ts), and Next.js may bundle this module
// once per layer, so a TaskError can come from another copy of this class: recognise it by a
// registry symbol, never by `instanceof`.
const TASK_ERROR = Symbol.for("writethrough-tasks.TaskError");

export function isTaskError(err: unknown): err is TaskError {
  return typeof err === "object" && err !== null && (err as Record<symbol, unknown>)[TASK_ERROR] === true;
}

export class TaskError extends Error {
  readonly [TASK_ERROR] = true;
  readonly code: TaskErrorCode;
  readonly issues?: ValidationIssue[];
  /** For `rate_limited`: when to try again (the Retry-After header). */
  readonly retryAfterSeconds?: number;
  constructor(code: TaskErrorCode, message: string, options?: { issues?: ValidationIssue[]; cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TaskError";
    this.code = code;
    this.issues = options?.issues;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
  get status(): number {
    return STATUS_BY_CODE[this.code];
  }
}

/** The JSON body of every error response: `{ error: { code, message, issues? } }`. */
export type ErrorBody = { error: { code: TaskErrorCode; message: string; issues?: ValidationIssue[] } };

export function errorBody(err: TaskError): ErrorBody {
  return { error: { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) } };
}
