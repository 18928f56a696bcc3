import { existsSync } from "node:fs";
import { defineConfig, devices } from "@playwright/test";

const port = Number(process.env.E2E_PORT ?? 3100);
const baseURL = process.env.E2E_BASE_URL ?? "http://127.0.0.1:" + port;

// Use the system Chromium when there is one; otherwise Playwright's own download.
const systemChromium = "/usr/bin/chromium";
const executablePath = existsSync(systemChromium) ? systemChromium : undefined;

// scripts/test.mjs sets E2E_SERVER_LOG: the app server's output (one log line per request, the
// warnings the stories provoke on purpose) goes to that file, and the runner shows its end only
// when a story fails. Without it (`npm run test:e2e`) the server's stderr shows as usual.
const serverLog = process.env.E2E_SERVER_LOG;
const intoServerLog = serverLog ? ` > '${serverLog.replace(/'/g, "'\\''")}' 2>&1` : "";

/** The server inherits the runner's environment (DATABASE_URL, REDIS_URL, CACHE_PREFIX, ...). */
function stringEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (typeof value === "string") env[key] = value;
  }
  return env;
}

export default defineConfig({
  testDir: "tests/e2e",
  fullyParallel: false,
  // A focused `.only` would silently skip every other story: never allowed, on CI or not.
  forbidOnly: true,
  workers: 1,
  retries: 0,
  reporter: [["list"], ["json", { outputFile: "test-results/e2e.json" }]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          executablePath,
          args: [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
          ],
        },
      },
    },
  ],
  webServer: process.env.E2E_BASE_URL
    ? undefined
    : {
        command: "node node_modules/next/dist/bin/next start -p " + port + intoServerLog,
        url: baseURL,
        reuseExistingServer: false,
        timeout: 120_000,
        env: stringEnv(),
      },
});
