import path from "node:path";
import { mkdirSync } from "node:fs";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema";

/** The Drizzle handle both drivers share; only lib/tasks/queries.ts uses it. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export type DatabaseConfig =
  | { kind: "postgres"; url: string; poolMax: number; prepare: boolean; timeoutMs: number }
  | { kind: "pglite"; dir: string };

export type Database = {
  kind: DatabaseConfig["kind"];
  db: Db;
  /** Statements issued through `db` since open: the store's, better-auth's, everyone's (bench and tests read it). */
  readonly statements: { count: number };
  /** Applies the committed migrations in drizzle/ (idempotent; serialised across processes on Postgres). */
  migrate(): Promise<void>;
  /** Round trip to the database; throws when it is unreachable. */
  ping(): Promise<void>;
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

export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.kind === "postgres") return openPostgres(config);
  return openPglite(config);
}

async function openPostgres(config: Extract<DatabaseConfig, { kind: "postgres" }>): Promise<Database> {
  const { default: postgres } = await import("postgres");
  const { drizzle } = await import("drizzle-orm/postgres-js");
  const options = {
    max: config.poolMax,
    prepare: config.prepare,
    connect_timeout: Math.max(1, Math.ceil(config.timeoutMs / 1000)),
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: "writethrough-tasks" },
  };
  const client = postgres(config.url, options);
  const statements = { count: 0 };
  const db = drizzle(client, { schema, logger: countingLogger(statements) }) as unknown as Db;
  return {
    kind: "postgres",
    db,
    statements,
    async migrate() {
      // A separate single connection, so the advisory lock and the migration share one session.
      const lockClient = postgres(config.url, { ...options, max: 1 });
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
      await client`select 1`;
    },
    async close() {
      await client.end({ timeout: 5 });
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
  const statements = { count: 0 };
  const db = drizzle(client, { schema, logger: countingLogger(statements) }) as unknown as Db;
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
    async close() {
      // An open PGlite keeps the process alive; always close it.
      if (!client.closed) await client.close();
    },
  };
}
