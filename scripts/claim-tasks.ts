// `npm run tasks:claim -- --email <email>`: gives every task without an owner (rows from before
// accounts existed) to the account with that email. Nothing is lost in between: unowned tasks are
// visible to no one until claimed. Safe to run again (it claims only what is still unowned).
import { claimUnownedTasks } from "../lib/tasks/queries";
import { createTaskStoreFromEnv } from "../lib/taskStore";

function emailArg(argv: string[]): string | undefined {
  const at = argv.indexOf("--email");
  if (at >= 0) return argv[at + 1];
  return argv.find((a) => a.startsWith("--email="))?.slice("--email=".length);
}

async function main() {
  const email = emailArg(process.argv.slice(2));
  if (!email || !email.includes("@")) {
    console.error("usage: npm run tasks:claim -- --email <email of an existing account>");
    process.exit(2);
  }
  const store = await createTaskStoreFromEnv();
  try {
    // One transaction: the rows change owner and a cache repair marking the owner's list index
    // dirty is recorded. Unowned tasks were never in anyone's cache (nobody could read them), but
    // the owner's list index, if built, lacks them; every server drops it on its next repair pass.
    const result = await claimUnownedTasks(store.database.db, { email });
    if (!result) {
      console.error(`no account with email ${email}: sign up first, then run this again`);
      process.exitCode = 1;
      return;
    }
    console.log(`gave ${result.claimed} task(s) to ${email}`);
    if (result.claimed > 0) await dropIndexNow(store, result.userId);
  } finally {
    await store.close();
  }
}

/**
 * Best effort, after the commit: drop the owner's list index now rather than at the servers' next
 * repair pass. A failure changes nothing about the claim, which the recorded repair completes.
 */
async function dropIndexNow(store: Awaited<ReturnType<typeof createTaskStoreFromEnv>>, userId: string) {
  const cache = store.cache;
  if (!cache) return;
  if (cache.driver.name === "memory") {
    console.log("note: the memory cache lives inside each server process; the servers drop the list index on their next repair pass.");
    return;
  }
  const slot = cache.driver.forUser(userId);
  try {
    await cache.run("dropIndex", () => slot.dropIndex(), `{u:${userId}}`);
  } catch (err) {
    console.warn(
      `warning: the cache could not be reached (${err instanceof Error ? err.message : String(err)}); ` +
        "the claim is committed and every server rebuilds the list on its next repair pass (cache_repairs).",
    );
  }
}

main().catch((err: unknown) => {
  console.error(`claim failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
