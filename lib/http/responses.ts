import type { z } from "zod";
import { log } from "../log";
import { errorBody, isTaskError, TaskError, type ValidationIssue } from "../tasks/errors";

export const MAX_BODY_BYTES = 16 * 1024;

const NO_STORE = { "Cache-Control": "no-store" };

export function json(body: unknown, init?: { status?: number; headers?: Record<string, string> }): Response {
  return Response.json(body, { status: init?.status ?? 200, headers: { ...NO_STORE, ...init?.headers } });
}

/** Every failure leaves through here: a fixed public message, never a stack or driver text. */
export function errorResponse(err: unknown): Response {
  const taskError =
    isTaskError(err) ? err : new TaskError("internal_error", "Something went wrong. Try again.", { cause: err });
  if (taskError.code === "internal_error") log.error("request failed", { err: taskError.cause ?? err });
  const headers: Record<string, string> = taskError.retryAfterSeconds === undefined ? {} : { "Retry-After": String(taskError.retryAfterSeconds) };
  return json(errorBody(taskError), { status: taskError.status, headers });
}

export function issuesOf(error: z.ZodError): ValidationIssue[] {
  return error.issues.map((i) => ({
    path: i.path.length > 0 ? i.path.join(".") : i.code === "unrecognized_keys" ? (i.keys ?? []).join(",") : "",
    message: i.code === "unrecognized_keys" ? `Unknown field${i.keys.length > 1 ? "s" : ""}: ${i.keys.join(", ")}.` : i.message,
  }));
}

/** Parses `value` with `schema`, or throws a 400 TaskError naming each bad field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, code: "validation_failed" | "invalid_id" = "validation_failed"): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = issuesOf(result.error);
  const message = issues.map((i) => (i.path && !i.message.includes(i.path) ? `${i.path}: ${i.message}` : i.message)).join(" ");
  throw new TaskError(code, message || "Invalid request.", { issues });
}

function isJsonContentType(header: string | null): boolean {
  if (!header) return false;
  const mediaType = header.split(";")[0]?.trim().toLowerCase() ?? "";
  return mediaType === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(mediaType);
}

/**
 * Reads a JSON request body: 415 unless it is JSON, 413 past 16 KiB (checked while streaming, so a
 * lying or absent Content-Length can't make us buffer more), 400 when it does not parse.
 */
export async function readJsonBody(req: Request): Promise<unknown> {
  if (!isJsonContentType(req.headers.get("content-type"))) {
    throw new TaskError("unsupported_media_type", "Send the body as JSON with Content-Type: application/json.");
  }
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_BODY_BYTES) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(Buffer.concat(chunks));
  try {
    return JSON.parse(text);
  } catch {
    throw new TaskError("invalid_json", "The request body is not valid JSON.");
  }
}

function tooLarge() {
  return new TaskError("payload_too_large", `The request body must be at most ${MAX_BODY_BYTES} bytes.`);
}
