import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));

// Files under tests/unit that still talk to a real server, and so run with the integration tests
// until they move to tests/integration. Keep this empty.
const UNIT_DIR_BUT_NEEDS_SERVICES = new Set<string>([]);

const unitFiles = readdirSync(`${root}tests/unit`, { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".test.ts"))
  .map((f) => `tests/unit/${f.split("\\").join("/")}`)
  .filter((f) => !UNIT_DIR_BUT_NEEDS_SERVICES.has(f));

/**
 * Two projects, each test file in exactly one: `unit` (tests/unit: no Postgres, no Redis; they are
 * pointed at closed ports, so a unit test that needs one fails) and `integration` (everything else,
 * on real Postgres and Redis). `vitest run` runs both; `--project unit` only the first.
 */
export default defineConfig({
  resolve: {
    alias: {
      "@": root,
      // lib/ marks its server modules with `import "server-only"`, which throws unless resolved under
      // the react-server condition (as Next.js does for server code): tests get the package's own
      // empty module, what that condition resolves to.
      "server-only": `${root}node_modules/server-only/empty.js`,
    },
  },
  test: {
    environment: "node",
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file makes its own database and key prefix, so files may run side by side.
    fileParallelism: true,
    maxWorkers: 2,
    // Tests provoke failures on purpose and the app logs each one, a warning with its stack: quiet
    // unless asked for (TEST_LOG_LEVEL=warn). A failing test reports its own error either way.
    env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL || "silent" },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: unitFiles,
          env: {
            TEST_DATABASE_URL: "postgres://postgres@127.0.0.1:1/unit_tests_use_no_postgres",
            TEST_REDIS_URL: "redis://127.0.0.1:1",
            DATABASE_URL: "",
            REDIS_URL: "",
          },
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["tests/**/*.test.ts"],
          exclude: ["tests/e2e/**", "node_modules/**", ...unitFiles],
        },
      },
    ],
  },
});
