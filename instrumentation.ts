// Runs once when a Next.js server starts, before it serves requests.
export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  // A bad variable throws here, naming it, and the server does not start.
  await import("./lib/env");
  // Production needs BETTER_AUTH_SECRET: without it the server stops here, naming the variable.
  (await import("./lib/auth/secret")).resolveAuthSecret();
  // Open the database and apply migrations now rather than on the first request. If Postgres is
  // down the server still starts: requests answer 503 until it is back, then the store opens.
  const { getTaskStore } = await import("./lib/taskStore");
  const store = await getTaskStore().catch(() => undefined);
  if (store) (await import("./lib/metrics")).attachStore(store);
}
