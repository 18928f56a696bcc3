"use client";

import { useState } from "react";
import { fullNavigation } from "./fullNavigation";

/** Who is signed in, and the way out. Compact: it sits in the task page's card header. */
export default function AccountBar({ name, email }: { name: string; email: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  // Never rejects: a failure is shown under the button.
  async function signOut() {
    if (busy) return;
    setBusy(true);
    setError(null);
    let res: Response;
    try {
      res = await fetch("/api/auth/sign-out", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
    } catch {
      setBusy(false);
      setError("Couldn’t reach the server, so you are still signed in. Try again.");
      return;
    }
    // Read to its end, so the navigation below doesn't cut the answer off (logged as aborted).
    await res.arrayBuffer().catch(() => undefined);
    // Whatever the answer: the sign-in page shows what the session really is now.
    fullNavigation("/sign-in");
  }

  return (
    <div className="account-bar">
      <p className="account-who">
        <span className="visually-hidden">Signed in as </span>
        <span className="account-name" title={name}>
          {name}
        </span>{" "}
        <span className="account-email" title={email}>
          {email}
        </span>
      </p>
      {/* aria-disabled rather than disabled: the button keeps focus while the request runs. */}
      <button
        type="button"
        className="button button-secondary button-small"
        onClick={() => void signOut()}
        aria-disabled={busy || undefined}
        aria-busy={busy || undefined}
      >
        {busy ? "Signing out…" : "Sign out"}
      </button>
      {error !== null && (
        <p className="account-error field-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
