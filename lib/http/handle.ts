import "server-only";
import { isTaskError, type TaskErrorCode } from "../tasks/errors";
import { errorResponse } from "./responses";

// The code of each error response made here, for the request's log line (lib/http/route.ts): a
// client that went away (request_aborted) reads differently from a bad title, both at info.
const errorCodes = new WeakMap<Response, TaskErrorCode>();

/** The error code `res` was made for by errorResponseFor, if it was. */
export function errorCodeOf(res: Response): TaskErrorCode | undefined {
  return errorCodes.get(res);
}

/** errorResponse(err), remembering its code for the request log line. */
export function errorResponseFor(err: unknown): Response {
  const res = errorResponse(err);
  errorCodes.set(res, isTaskError(err) ? err.code : "internal_error");
  return res;
}

/** Runs a handler body; anything it throws leaves as the JSON error response for it. */
export async function handle(fn: () => Promise<Response>): Promise<Response> {
  try {
    return await fn();
  } catch (err) {
    return errorResponseFor(err);
  }
}
