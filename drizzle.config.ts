import { defineConfig } from "drizzle-kit";

// drizzle-kit only generates SQL from lib/db/schema.ts here; migrations are applied by the app
// itself (lib/db/migrate.ts), on Postgres and on embedded PGlite alike.
export default defineConfig({
  dialect: "postgresql",
  schema: "./lib/db/schema.ts",
  out: "./drizzle",
  strict: true,
  verbose: true,
});
