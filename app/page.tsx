import { connection } from "next/server";
import { unstable_rethrow } from "next/navigation";
import { getTaskStore } from "@/lib/taskStore";
import { isTaskError } from "@/lib/tasks/errors";
import { LIST_LIMIT_DEFAULT, type Task } from "@/lib/tasks/schema";
import TaskApp from "./_components/TaskApp";
import LoadErrorPanel from "./_components/LoadErrorPanel";

type FirstPage = { ok: true; tasks: Task[]; nextCursor: string | null } | { ok: false; message: string };

async function loadFirstPage(): Promise<FirstPage> {
  try {
    const store = await getTaskStore();
    const page = await store.list({ limit: LIST_LIMIT_DEFAULT });
    return { ok: true, tasks: page.tasks, nextCursor: page.nextCursor };
  } catch (err) {
    unstable_rethrow(err);
    // The store has already logged the details; one line here ties them to the page.
    console.error("[page] could not load tasks:", err instanceof Error ? `${err.name}: ${err.message}` : err);
    // A TaskError's message is public by design; anything else is replaced.
    const message = isTaskError(err) ? err.message : "The task database did not answer.";
    return { ok: false, message };
  }
}

export default async function Home() {
  // Render per request: `next build` must never touch the database.
  await connection();
  const first = await loadFirstPage();

  return (
    <div className="shell">
      <main className="card" aria-labelledby="page-title">
        <header className="card-header">
          <h1 id="page-title">Tasks</h1>
        </header>
        {first.ok ? (
          <TaskApp
            initialTasks={first.tasks.map((t) => ({ ...t }))}
            initialNextCursor={first.nextCursor}
          />
        ) : (
          <LoadErrorPanel message={first.message} />
        )}
      </main>
      <footer className="footer">
        <p>Postgres is the source of truth; every write goes through the <a className="lab-link" href="/cache" aria-label="Redis cache (open the cache lab)">Redis cache</a>.</p>
      </footer>
    </div>
  );
}
