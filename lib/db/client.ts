import "server-only";
import path from "node:path";
import { mkdirSync } from "node:fs";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type { BreakerState } from "../names";
import { guardPool, withDatabaseBudget } from "./guard";
import * as schema from "./schema";

/** The Drizzle handle both drivers share; only lib/tasks/queries.ts uses it. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export type DatabaseConfig =
  | {
      kind: "postgres";
      url: string;
      poolMax: number;
      prepare: boolean;
      /** Client-side deadline per statement or transaction (see ./guard.ts). */
      timeoutMs: number;
      /** Server-side statement_timeout; defaults to 250 ms under timeoutMs. */
      statementTimeoutMs?: number;
      /** Defaults to timeoutMs. */
      connectTimeoutMs?: number;
      /** Database breaker: consecutive unavailable failures that open it (default 3), and how long it stays open (default 1000 ms). */
      breakerFailures?: number;
      breakerCooldownMs?: number;
    }
  | { kind: "pglite"; dir: string };

export type Database = {
  kind: DatabaseConfig["kind"];
  db: Db;
  /** Statements and transactions issued through `db` since open: the store's, better-auth's, everyone's (bench and tests read it). */
  readonly statements: { count: number; transactions: number };
  /** Applies the committed migrations in drizzle/ (idempotent; serialised across processes on Postgres). */
  migrate(): Promise<void>;
  /** Round trip to the database, outside the breaker; throws when it is unreachable. */
  ping(): Promise<void>;
  /** The database breaker (null on PGlite, which runs in this process): open means requests get 503 at once. */
  readonly breakerState: BreakerState | null;
  /** Calls `listener` on every change of the database breaker (never, on PGlite); returns a function that unsubscribes. */
  onBreakerTransition(listener: (from: BreakerState, to: BreakerState) => void): () => void;
  /** How long until the breaker lets a statement through again (0 when closed). */
  readonly retryAfterMs: number;
  /** The breaker's counts: statements that timed out, and times it opened (null on PGlite). */
  readonly breakerStats: { readonly timeouts: number; readonly opened: number } | null;
  /** Times the pool was replaced after a statement used its whole deadline (lib/db/guard.ts). */
  readonly poolResets: number;
  /** Runs `fn` with the database budget (DATABASE_TIMEOUT_MS) for all its statements together. */
  bounded<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
};

const MIGRATIONS_FOLDER = path.join(process.cwd(), "drizzle");
// Any constant works; it only has to be the same in every process running migrations.
const MIGRATION_LOCK_KEY = 727_274_001;

/** A Drizzle "logger" that only counts: it sees every statement sent through the handle. */
function countingLogger(statements: { count: number }) {
  return {
    logQuery() {
      statements.count++;
    },
  };
}

/** Counts each `db.transaction()` (a nested one, a savepoint, runs on the transaction's own handle and isn't counted). */
function countTransactions(db: Db, statements: { transactions: number }): Db {
  const begin = db.transaction.bind(db);
  db.transaction = ((...args: Parameters<Db["transaction"]>) => {
    statements.transactions++;
    return begin(...args);
  }) as Db["transaction"];
  return db;
}

export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.kind === "postgres") return openPostgres(config);
  return openPglite(config);
}

async function openPostgres(config: Extract<DatabaseConfig, { kind: "postgres" }>): Promise<Database> {
  const { default: postgres } = await import("postgres");
  const { drizzle } = await import("drizzle-orm/postgres-js");
  const statementTimeoutMs = config.statementTimeoutMs ?? Math.max(50, config.timeoutMs - 250);
  const options = {
    max: config.poolMax,
    prepare: config.prepare,
    // postgres.js counts this from the socket opening to the server's first ReadyForQuery.
    connect_timeout: (config.connectTimeoutMs ?? config.timeoutMs) / 1000,
    idle_timeout: 30,
    // No array-type lookup on each new connection: one round trip less after every pool
    // replacement, and nothing here reads Postgres arrays.
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: "writethrough-tasks", statement_timeout: statementTimeoutMs },
  };
  const pool = guardPool(() => postgres(config.url, options), {
    timeoutMs: config.timeoutMs,
    breakerFailures: config.breakerFailures ?? 3,
    breakerCooldownMs: config.breakerCooldownMs ?? 1000,
  });
  const statements = { count: 0, transactions: 0 };
  const db = countTransactions(drizzle(pool.client, { schema, logger: countingLogger(statements) }), statements);
  return {
    kind: "postgres",
    db,
    statements,
    async migrate() {
      // A separate single connection, so the advisory lock and the migration share one session.
      // No statement_timeout here: waiting for another process's migration, or building an index
      // on a big table, may rightly take longer than any request should.
      const lockClient = postgres(config.url, { ...options, max: 1, connection: { ...options.connection, statement_timeout: 0 } });
      try {
        const { migrate } = await import("drizzle-orm/postgres-js/migrator");
        await lockClient`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
        try {
          await migrate(drizzle(lockClient), { migrationsFolder: MIGRATIONS_FOLDER });
        } finally {
          await lockClient`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
        }
      } finally {
        await lockClient.end({ timeout: 5 });
      }
    },
    async ping() {
      await pool.current()`select 1`;
    },
    get breakerState() {
      return pool.breaker.currentState;
    },
    onBreakerTransition: (listener) => pool.breaker.onTransition(listener),
    bounded: (fn) => withDatabaseBudget(config.timeoutMs, fn),
    get poolResets() {
      return pool.resets;
    },
    get retryAfterMs() {
      return pool.breaker.retryAfterMs;
    },
    get breakerStats() {
      return pool.breaker.stats;
    },
    async close() {
      await pool.end();
    },
  };
}

async function openPglite(config: Extract<DatabaseConfig, { kind: "pglite" }>): Promise<Database> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  let dataDir: string | undefined;
  if (config.dir !== ":memory:") {
    dataDir = path.resolve(config.dir);
    mkdirSync(dataDir, { recursive: true });
  }
  const client = await PGlite.create(dataDir);
  const statements = { count: 0, transactions: 0 };
  const db = countTransactions(drizzle(client, { schema, logger: countingLogger(statements) }), statements);
  return {
    kind: "pglite",
    db,
    statements,
    async migrate() {
      const { migrate } = await import("drizzle-orm/pglite/migrator");
      await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
    },
    async ping() {
      await client.query("select 1");
    },
    breakerState: null,
    onBreakerTransition: () => () => undefined,
    retryAfterMs: 0,
    breakerStats: null,
    // In this process: no network to stall on.
    bounded: (fn) => fn(),
    poolResets: 0,
    async close() {
      // An open PGlite keeps the process alive; always close it.
      if (!client.closed) await client.close();
    },
  };
}
