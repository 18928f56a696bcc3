import "server-only";
import pino from "pino";
import { env } from "./env";

/**
 * Structured JSON logs (pino), one object per line. Details that must never reach a client (driver
 * errors, stacks) go here and only here; what a user wrote (task titles, SQL parameters) goes
 * nowhere, not even here: see serializeError.
 */

// What an error may carry into the log besides its type, message and stack: codes and where a
// connection went (Node, postgres.js), which SQLSTATE and which object (Postgres, named as
// postgres.js names the fields and as PGlite, after pg-protocol, does). Everything else
// is dropped, whatever the driver put there: postgres.js `query`, `parameters`, `args` and `types`,
// drizzle's `query` and `params`, Postgres' `detail` ("Failing row contains (...)"), `where` and
// `hint`, ioredis' `command` with its arguments, PGlite's `params`.
const IDENTIFIER_FIELDS = ["schema_name", "table_name", "column_name", "constraint_name", "data_type_name", "schema", "table", "column", "constraint", "dataType"] as const;
const SAFE_FIELDS = ["code", "errno", "syscall", "address", "port", "severity", "routine", ...IDENTIFIER_FIELDS] as const;
const MAX_DEPTH = 5;
const MAX_MESSAGE_CHARS = 2000;
// drizzle's DrizzleQueryError: "Failed query: <sql>\nparams: <the values>".
const DRIZZLE_QUERY_MESSAGE = /^Failed query: [\s\S]*\nparams: /;

type SerializedError = { type: string; message: string; stack?: string; cause?: unknown; errors?: unknown[] } & Record<string, unknown>;

function isPostgresServerError(err: Record<string, unknown>): boolean {
  return typeof err.severity === "string" && typeof err.code === "string" && /^[0-9A-Z]{5}$/.test(err.code);
}

/** The message, without what the query was or what it was given. */
function safeMessage(err: Record<string, unknown>, message: string): string {
  if (DRIZZLE_QUERY_MESSAGE.test(message)) return "Failed query (its SQL and parameters are not logged).";
  if (isPostgresServerError(err)) {
    // Postgres quotes the names of objects in its messages, and values too ('invalid input syntax
    // for type integer: "..."'): a quoted word that is not one of the error's names is redacted.
    const identifiers = new Set(IDENTIFIER_FIELDS.map((f) => err[f]).filter((v): v is string => typeof v === "string"));
    message = message.replace(/"((?:[^"]|"")*)"/g, (quoted, inner: string) => (identifiers.has(inner.replace(/""/g, '"')) ? quoted : '"[redacted]"'));
  }
  return message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS)}…` : message;
}

/** Strings that are an error's message (`reason: err.message`), held to the same rule. */
function safeText(text: string): string {
  return DRIZZLE_QUERY_MESSAGE.test(text) ? "Failed query (its SQL and parameters are not logged)." : text;
}

/**
 * What a thrown object without a string `message` says of itself: its own toString's text when it
 * has one. Never "[object Object]", and never a throw (an object without a prototype has no toString).
 */
function ownText(value: object): string {
  const toString: unknown = (value as { toString?: unknown }).toString;
  if (typeof toString !== "function" || toString === Object.prototype.toString) return "(no message)";
  try {
    const text: unknown = toString.call(value);
    return typeof text === "string" ? text : "(no message)";
  } catch {
    return "(no message)";
  }
}

/**
 * An error as the log shows it: type, message, code, stack and a few safe fields, its `cause` chain
 * and an AggregateError's `errors` the same way; never query text or parameters (SAFE_FIELDS). The
 * stack keeps only its frames, under the safe message, since its first line repeats the message.
 * pino uses it for every `err`, `error`, `cause` and `reason` field (lib/log.ts createLogger).
 */
export function serializeError(value: unknown, depth = 0, seen = new Set<unknown>()): unknown {
  if (typeof value === "string") return safeText(value);
  if (typeof value !== "object" || value === null) return value;
  if (seen.has(value) || depth > MAX_DEPTH) return "[cause omitted]";
  seen.add(value);
  const err = value as Record<string, unknown>;
  // A bundled driver's class name may be minified ("O"): then its `name` says more.
  const className = typeof err.constructor === "function" && err.constructor !== Object ? err.constructor.name : "";
  const type = className.length > 2 ? className : typeof err.name === "string" && err.name !== "" ? err.name : "Error";
  const message = safeMessage(err, typeof err.message === "string" ? err.message : ownText(value));
  const out: SerializedError = { type, message };
  for (const field of SAFE_FIELDS) {
    const v = err[field];
    if (typeof v === "string" || typeof v === "number") out[field] = v;
  }
  if (typeof err.stack === "string") {
    const frames = err.stack.split("\n").filter((line) => /^\s+at /.test(line));
    out.stack = [`${type}: ${message}`, ...frames].join("\n");
  }
  if (err.cause !== undefined) out.cause = serializeError(err.cause, depth + 1, seen);
  if (Array.isArray(err.errors)) out.errors = err.errors.slice(0, 5).map((e) => serializeError(e, depth + 1, seen));
  return out;
}

const errorSerializer = (value: unknown) => serializeError(value);

/** The app's logger writing to `destination` (stdout unless a test passes one). */
export function createLogger(level: pino.LevelWithSilent, destination?: pino.DestinationStream): pino.Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "writethrough-tasks" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: errorSerializer, error: errorSerializer, cause: errorSerializer, reason: errorSerializer },
  };
  return destination ? pino(options, destination) : pino(options);
}

const holder = globalThis as unknown as { __logger?: pino.Logger };
const logger = (holder.__logger ??= createLogger(env.LOG_LEVEL));

type Fields = Record<string, unknown>;

export const log = {
  debug: (msg: string, fields?: Fields) => logger.debug(fields ?? {}, msg),
  info: (msg: string, fields?: Fields) => logger.info(fields ?? {}, msg),
  warn: (msg: string, fields?: Fields) => logger.warn(fields ?? {}, msg),
  error: (msg: string, fields?: Fields) => logger.error(fields ?? {}, msg),
};
