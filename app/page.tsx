import { connection } from "next/server";
import { redirect, unstable_rethrow } from "next/navigation";
import { getCurrentUser, type CurrentUser } from "@/lib/auth/session";
import { publicError } from "@/lib/http/publicError";
import { listBody } from "@/lib/http/taskHandlers";
import type { CacheDriverChoice } from "@/lib/names";
import { getTaskStore } from "@/lib/taskStore";
import { LIST_LIMIT_DEFAULT, type Task, type TaskCounts } from "@/lib/tasks/schema";
import AccountBar from "./_components/AccountBar";
import ApiKeysPanel from "./_components/ApiKeysPanel";
import TaskApp from "./_components/TaskApp";
import LoadErrorPanel from "./_components/LoadErrorPanel";
import { cacheSentence } from "./_components/cacheInUse";
import type { LiveMode } from "./_components/useLiveUpdates";

type FirstPage = (
  | { ok: true; user: CurrentUser; tasks: Task[]; nextCursor: string | null; counts: TaskCounts; live: LiveMode; etag: string }
  | { ok: true; user: null }
  | { ok: false; message: string }
) & {
  /** The cache the store uses, for the footer; null when the store could not be opened. */
  cacheDriver: CacheDriverChoice | null;
};

/** The signed-in user and the first page of their tasks, read through the cache. */
async function loadFirstPage(): Promise<FirstPage> {
  let cacheDriver: CacheDriverChoice | null = null;
  try {
    const user = await getCurrentUser();
    if (!user) return { ok: true, user: null, cacheDriver };
    const store = await getTaskStore();
    cacheDriver = store.cacheDriverName;
    const page = await store.forUser(user.id).list({ limit: LIST_LIMIT_DEFAULT });
    // With a live bus the page listens for changes made elsewhere; without one (Upstash, no cache) it polls.
    // The page's ETag is what GET /api/tasks would give for it: the page checks it against the server's once it listens.
    return { ok: true, user, tasks: page.tasks, nextCursor: page.nextCursor, counts: page.counts, live: store.live ? "stream" : "poll", etag: listBody(page).etag, cacheDriver };
  } catch (err) {
    unstable_rethrow(err);
    // The same boundary as the API's and the actions': logged once, and only a public message shown.
    return { ok: false, message: publicError(err, "task page").message, cacheDriver };
  }
}

export default async function Home() {
  // Render per request: `next build` must never touch the database.
  await connection();
  const first = await loadFirstPage();
  if (first.ok && !first.user) redirect("/sign-in?next=/");
  const cache = cacheSentence(first.cacheDriver);

  return (
    <div className="shell">
      <main className="card" aria-labelledby="page-title">
        <header className="card-header">
          <h1 id="page-title">Tasks</h1>
          {first.ok && first.user ? <AccountBar name={first.user.name} email={first.user.email} /> : null}
        </header>
        {first.ok && first.user ? (
          <TaskApp
            initialTasks={first.tasks.map((t) => ({ ...t }))}
            initialNextCursor={first.nextCursor}
            initialCounts={{ all: first.counts.all, open: first.counts.open, done: first.counts.done }}
            live={first.live}
            initialEtag={first.etag}
          />
        ) : (
          <LoadErrorPanel message={first.ok ? "" : first.message} />
        )}
      </main>
      {first.ok && first.user ? <ApiKeysPanel /> : null}
      <footer className="footer">
        {/* Names the cache the store really uses (Redis, Upstash, the in-process one, or none). */}
        <p>
          {cache.before}
          <a className="lab-link" href="/cache" aria-label={cache.linkName}>
            {cache.link}
          </a>
          {cache.after}
        </p>
      </footer>
    </div>
  );
}
