// `npm run db:migrate`: applies drizzle/ migrations to DATABASE_URL, or to the embedded PGlite.
import { openDatabase } from "../lib/db/client";
import { databaseConfigFromEnv } from "../lib/taskStore";

async function main() {
  const config = databaseConfigFromEnv();
  const database = await openDatabase(config);
  try {
    await database.migrate();
    console.log(`migrations applied (${config.kind === "postgres" ? "Postgres" : `PGlite in ${config.dir}`})`);
  } finally {
    await database.close();
  }
}

main().catch((err: unknown) => {
  console.error(`migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
