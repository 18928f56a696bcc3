// `npm run cache:audit`: compares every cached task and the cached list with Postgres, using the
// same configuration as the app. Prints the report; exits 1 on drift, 2 when it could not run.
import { createTaskStoreFromEnv } from "../lib/taskStore";

async function main(): Promise<number> {
  const store = await createTaskStoreFromEnv();
  try {
    if (store.cacheDriverName === "memory") {
      console.error("note: the memory cache lives inside each server process; this audit sees only its own (empty) cache. Use GET /api/cache/audit on the running app.");
    }
    const report = await store.audit();
    console.log(JSON.stringify(report, null, 2));
    console.log(
      report.ok
        ? `cache agrees with Postgres: ${report.checked} entries checked`
        : `cache DRIFT: ${report.stale} stale, ${report.ghosts} ghosts, ${report.missingFromList} missing from list (${report.checked} checked)`,
    );
    return report.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`cache audit failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
