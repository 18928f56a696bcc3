import { connection } from "next/server";
import { redirect, unstable_rethrow } from "next/navigation";
import { getCurrentUser, safeNextPath } from "@/lib/auth/session";
import { publicError } from "@/lib/http/publicError";
import AuthForm from "./AuthForm";

type SearchParams = Promise<{ next?: string | string[] }>;

/** /sign-in and /sign-up: the same card and form; someone already signed in goes straight on. */
export default async function AuthPage({ mode, searchParams }: { mode: "sign-in" | "sign-up"; searchParams: SearchParams }) {
  // Render per request: `next build` must never touch the database.
  await connection();
  const next = safeNextPath((await searchParams).next);
  // If the session can't be checked, show the form anyway: sending it will say what is wrong (and
  // the failure is logged by the one error boundary, as everywhere else).
  const user = await getCurrentUser().catch((err: unknown) => {
    unstable_rethrow(err);
    publicError(err, `${mode} page`);
    return null;
  });
  if (user) redirect(next);

  return (
    <div className="shell">
      <main className="card auth-card" aria-labelledby="page-title">
        <header className="card-header">
          <h1 id="page-title">{mode === "sign-in" ? "Sign in" : "Create an account"}</h1>
          <p className="auth-lede">writethrough-tasks is a task manager whose write-through cache you can watch.</p>
        </header>
        <AuthForm mode={mode} next={next} />
      </main>
    </div>
  );
}
