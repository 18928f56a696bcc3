import type { Metadata } from "next";
import Link from "next/link";
import { connection } from "next/server";
import { redirect } from "next/navigation";
import { getCurrentUser } from "@/lib/auth/session";
import CacheLab from "./CacheLab";
import "./lab.css";

export const metadata: Metadata = {
  title: "Cache lab · writethrough-tasks",
  description: "Watch a write go through Postgres and the write-through cache, version by version.",
};

export default async function CacheLabPage() {
  // Render per request: the lab reads live state in the browser, and `next build` must never
  // touch the database or the cache.
  await connection();
  // The lab shows the signed-in user's own tasks and cache events only.
  if (!(await getCurrentUser().catch(() => null))) redirect("/sign-in?next=/cache");

  return (
    <div className="shell lab-shell">
      <CacheLab />
      <footer className="footer">
        <p>
          The lab reads <code>/api/cache/state</code> every second. <Link href="/">Back to the tasks</Link>
        </p>
      </footer>
    </div>
  );
}
