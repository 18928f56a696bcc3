import "server-only";
import type { z } from "zod";
import { env } from "../env";
import { isTaskError, TaskError, type ValidationIssue } from "../tasks/errors";
import { publicError, publicErrorBody } from "./publicError";

export const MAX_BODY_BYTES = 16 * 1024;

export const NO_STORE = { "Cache-Control": "no-store" };

export function json(body: unknown, init?: { status?: number; headers?: Record<string, string> }): Response {
  return Response.json(body, { status: init?.status ?? 200, headers: { ...NO_STORE, ...init?.headers } });
}

/** Every failure leaves through here: a fixed public message, never a stack or driver text. */
export function errorResponse(err: unknown): Response {
  const taskError = publicError(err, "request");
  const headers: Record<string, string> = taskError.retryAfterSeconds === undefined ? {} : { "Retry-After": String(taskError.retryAfterSeconds) };
  return json({ error: publicErrorBody(taskError) }, { status: taskError.status, headers });
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
 * lying or absent Content-Length can't make us buffer more), 408 when the whole body takes longer
 * than `timeoutMs` to arrive, 400 request_aborted when the client goes away mid-body (nobody reads
 * that answer, and it is the client's doing, not a failure of ours), 400 when it is not UTF-8 or
 * does not parse.
 */
export async function readJsonBody(req: Request, { timeoutMs = env.REQUEST_BODY_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<unknown> {
  if (!isJsonContentType(req.headers.get("content-type"))) {
    throw new TaskError("unsupported_media_type", "Send the body as JSON with Content-Type: application/json.");
  }
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Uint8Array[] = [];
  if (req.body) {
    const reader = req.body.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TaskError("request_timeout", `The request body must arrive within ${timeoutMs} ms.`)), timeoutMs);
    });
    // Awaited only through the race: firing just as the last chunk lands must not go unhandled.
    deadline.catch(() => {});
    try {
      let size = 0;
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await Promise.race([reader.read(), deadline]);
        } catch (err) {
          if (isTaskError(err)) throw err;
          // The body stream failed under us: the client reset or closed the connection mid-body.
          throw new TaskError("request_aborted", "The client closed the connection before the request body arrived.", { cause: err });
        }
        if (chunk.done) break;
        size += chunk.value.byteLength;
        if (size > MAX_BODY_BYTES) throw tooLarge();
        chunks.push(chunk.value);
      }
    } catch (err) {
      reader.cancel().catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new TaskError("invalid_json", "The request body is not valid UTF-8.");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new TaskError("invalid_json", "The request body is not valid JSON.");
  }
}

function tooLarge() {
  return new TaskError("payload_too_large", `The request body must be at most ${MAX_BODY_BYTES} bytes.`);
}
