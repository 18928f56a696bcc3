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
    const result = await claimUnownedTasks(store.database.db, { email });
    if (!result) {
      console.error(`no account with email ${email}: sign up first, then run this again`);
      process.exitCode = 1;
      return;
    }
    // Unowned tasks were never in anyone's cache (nobody could read them), but the new owner's
    // list index, if built, lacks them: drop it, so their next list read rebuilds it with them.
    const slot = store.cache?.driver.forUser(result.userId);
    if (slot) await store.cache?.run("dropIndex", () => slot.dropIndex());
    console.log(`gave ${result.claimed} task(s) to ${email}`);
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => {
  console.error(`claim failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
