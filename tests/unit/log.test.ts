import { PGlite } from "@electric-sql/pglite";
import { DrizzleQueryError } from "drizzle-orm/errors";
import postgres from "postgres";
import { describe, expect, test } from "vitest";
import { createLogger, serializeError } from "@/lib/log";
import { TaskError } from "@/lib/tasks/errors";

// Errors shaped as the drivers make them, logged as the store logs them
// (`log.warn("database unavailable", { err })`, `log.error("request failed", { err: cause })`): the
// log keeps what went wrong and where, never the query, its parameters or the row (a task title
// is a parameter). tests/integration/edges.test.ts does the same with errors from a live Postgres.

const SECRET = `a task title nobody may read ${Date.now()}`;

/** What one logged object looks like once pino has written it. */
function logged(fields: Record<string, unknown>): { text: string; line: Record<string, unknown> } {
  const lines: string[] = [];
  const logger = createLogger("debug", { write: (chunk: string) => void lines.push(chunk) });
  logger.warn(fields, "database unavailable");
  expect(lines).toHaveLength(1);
  return { text: lines[0] as string, line: JSON.parse(lines[0] as string) as Record<string, unknown> };
}

/**
 * A PostgresError as postgres.js hands it over: the server's fields (Object.assign'd by its
 * constructor), then, in connection.js queryError, the statement and its values (enumerable with
 * `debug: true`) and the caller's stack appended.
 */
function postgresJsError(fields: Record<string, string>, query: string, parameters: unknown[]): Error {
  const err = new postgres.PostgresError({ severity_local: "ERROR", severity: "ERROR", file: "f.c", line: "1", ...fields } as never);
  Object.defineProperties(err, {
    stack: { value: `${err.stack}\n    at Query.handled (/app/lib/tasks/queries.ts:10:5)`, enumerable: true },
    query: { value: query, enumerable: true },
    parameters: { value: parameters, enumerable: true },
    args: { value: parameters, enumerable: true },
    types: { value: [25], enumerable: true },
  });
  return err;
}

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure");
}

describe("logging driver errors", () => {
  test("a postgres.js error keeps its SQLSTATE and message, not the query, the parameters or the quoted value", () => {
    const err = postgresJsError(
      { code: "22P02", message: `invalid input syntax for type integer: "${SECRET}"`, routine: "pg_strtoint32_safe" },
      "select $1::int as n",
      [SECRET],
    );
    const { text, line } = logged({ err });
    expect(text).not.toContain(SECRET);
    expect(text).not.toMatch(/select|\$1/i);
    expect(line.err).toMatchObject({
      type: "PostgresError",
      code: "22P02",
      severity: "ERROR",
      message: 'invalid input syntax for type integer: "[redacted]"',
    });
    expect(line.err).not.toHaveProperty("parameters");
    expect(line.err).not.toHaveProperty("query");
    expect((line.err as { stack: string }).stack).toMatch(/^PostgresError: invalid input syntax for type integer: "\[redacted\]"\n\s+at /);
    expect((line.err as { stack: string }).stack).toContain("queries.ts:10:5");
  });

  test("a check violation keeps the relation and constraint names and drops the failing row", () => {
    const err = postgresJsError(
      {
        code: "23514",
        message: 'new row for relation "tasks" violates check constraint "tasks_title_check"',
        detail: `Failing row contains (1, ${SECRET}, f).`,
        schema_name: "public",
        table_name: "tasks",
        constraint_name: "tasks_title_check",
      },
      "insert into tasks (title) values ($1)",
      [SECRET],
    );
    const { text, line } = logged({ err });
    expect(text).not.toContain(SECRET);
    expect(line.err).toMatchObject({
      message: 'new row for relation "tasks" violates check constraint "tasks_title_check"',
      table_name: "tasks",
      constraint_name: "tasks_title_check",
    });
    expect(line.err).not.toHaveProperty("detail");
  });

  test("drizzle's 'Failed query: ... params: ...' wrapper and its cause are logged without either", () => {
    const cause = postgresJsError({ code: "22P02", message: `invalid input syntax for type integer: "${SECRET}"` }, "select $1::int", [SECRET]);
    const err = new DrizzleQueryError("select $1::int", [SECRET], cause);
    expect(err.message).toContain(SECRET);
    const { text, line } = logged({ err: new TaskError("internal_error", "Something went wrong. Try again.", { cause: err }) });
    expect(text).not.toContain(SECRET);
    expect(text).not.toMatch(/select|params:/i);
    expect(line.err).toMatchObject({
      type: "TaskError",
      code: "internal_error",
      cause: { type: "DrizzleQueryError", message: "Failed query (its SQL and parameters are not logged).", cause: { code: "22P02" } },
    });
  });

  test("an error's message logged as a string field (`reason: err.message`) is held to the same rule", () => {
    const err = new DrizzleQueryError("update tasks set title = $1", [SECRET], new Error("boom"));
    const { text, line } = logged({ reason: err.message, error: err });
    expect(text).not.toContain(SECRET);
    expect(line.reason).toBe("Failed query (its SQL and parameters are not logged).");
  });

  test("a PGlite error (the zero-setup driver) keeps its names and SQLSTATE, not its params or the failing row", async () => {
    const db = new PGlite();
    try {
      await db.exec("create table probe (title text constraint probe_short check (char_length(title) < 5))");
      const err = await failure(() => db.query("insert into probe (title) values ($1)", [SECRET]));
      expect(JSON.stringify((err as { params: unknown }).params)).toContain(SECRET);
      expect((err as { detail: string }).detail).toContain(SECRET);
      const { text, line } = logged({ err });
      expect(text).not.toContain(SECRET);
      expect(text).not.toMatch(/insert into/i);
      expect(line.err).toMatchObject({
        type: "error",
        code: "23514",
        table: "probe",
        constraint: "probe_short",
        message: 'new row for relation "probe" violates check constraint "probe_short"',
      });
    } finally {
      await db.close();
    }
  });

  test("a connection failure keeps its code and address", async () => {
    const refused = postgres("postgres://postgres@127.0.0.1:1/postgres", { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      const err = await failure(() => refused`select 1`);
      const { line } = logged({ err });
      expect(line.err).toMatchObject({ code: "ECONNREFUSED" });
      expect(JSON.stringify(line.err)).toContain("127.0.0.1");
    } finally {
      await refused.end({ timeout: 0 });
    }
  });
});

describe("serializeError", () => {
  test("keeps only the type, message, stack and safe fields of whatever it is given", () => {
    const err = Object.assign(new Error("ERR wrong number of arguments"), {
      code: "ERR",
      command: { name: "set", args: ["wt:task:1", JSON.stringify({ title: SECRET })] },
    });
    const out = serializeError(err) as Record<string, unknown>;
    expect(Object.keys(out).sort()).toEqual(["code", "message", "stack", "type"]);
    expect(JSON.stringify(out)).not.toContain(SECRET);
  });

  test("survives a cause cycle and passes non-errors through", () => {
    const a = new Error("a") as Error & { cause?: unknown };
    const b = new Error("b", { cause: a });
    a.cause = b;
    expect(serializeError(a)).toMatchObject({ message: "a", cause: { message: "b", cause: "[cause omitted]" } });
    expect(serializeError("plain words")).toBe("plain words");
    expect(serializeError(42)).toBe(42);
  });
});
