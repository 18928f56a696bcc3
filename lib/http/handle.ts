import { errorResponse } from "./responses";

/** Runs a handler body; anything it throws leaves as the JSON error response for it. */
export async function handle(fn: () => Promise<Response>): Promise<Response> {
  try {
    return await fn();
  } catch (err) {
    return errorResponse(err);
  }
}
