"use client";

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { fullNavigation } from "./fullNavigation";

type ApiKey = { id: string; name: string; createdAt: string; lastUsedAt?: string };
type CreatedKey = { id: string; name: string; key: string; createdAt: string };

const KEYS_KEY = ["api-keys"] as const;
const KEY_NAME_MAX = 64;
// The same rule the server applies to key names (lib/auth/apiKeys.ts).
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const UNREACHABLE = "Couldn’t reach the server. Check your connection and try again.";

/** The message for the first problem with a key name, or null when it is acceptable. */
export function keyNameError(value: string): string | null {
  const name = value.trim();
  if (name === "") return "Give the key a name, such as the program that will use it.";
  // UTF-16 length, as the server's zod schema counts it.
  if (name.length > KEY_NAME_MAX) return `Use at most ${KEY_NAME_MAX} characters.`;
  if (CONTROL_CHARS.test(name)) return "Use letters, digits, spaces and punctuation only.";
  return null;
}

/** A refused /api/keys request, carrying the server's public message. */
class KeysError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "KeysError";
    this.status = status;
  }
}

/** Calls /api/keys; throws a KeysError with a message fit to show. A 401 sends the person to sign in. */
async function keysRequest<T>(path: string, init?: { method: "POST" | "DELETE"; body?: unknown }): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: init?.method ?? "GET",
      credentials: "same-origin",
      headers: init?.body !== undefined ? { "Content-Type": "application/json" } : undefined,
      body: init?.body !== undefined ? JSON.stringify(init.body) : undefined,
    });
  } catch {
    throw new KeysError(0, UNREACHABLE);
  }
  if (res.status === 401) {
    // The session ended (signed out elsewhere, or expired).
    fullNavigation("/sign-in?next=/");
    throw new KeysError(401, "Your session has ended. Sign in again.");
  }
  if (res.status === 204) return undefined as T;
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
    throw new KeysError(res.status, typeof message === "string" && message !== "" ? message : "Something went wrong. Try again.");
  }
  return body as T;
}

function messageOf(err: unknown): string {
  return err instanceof KeysError ? err.message : "Something went wrong. Try again.";
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function When({ iso, withTime = false }: { iso: string; withTime?: boolean }) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return <>unknown</>;
  return <time dateTime={iso}>{(withTime ? dateTimeFormat : dateFormat).format(date)}</time>;
}

/** A signed-in person's API keys: explained, listed, created (secret shown once) and revoked. */
export default function ApiKeysPanel() {
  const queryClient = useQueryClient();
  // Nothing is fetched until the panel is opened.
  const [open, setOpen] = useState(false);
  const keysQuery = useQuery({
    queryKey: KEYS_KEY,
    queryFn: async () => (await keysRequest<{ keys: ApiKey[] }>("/api/keys")).keys,
    enabled: open,
    retry: false,
    refetchOnWindowFocus: false,
  });
  const keys = keysQuery.data ?? [];

  const [name, setName] = useState("");
  const [nameError, setNameError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [copied, setCopied] = useState<"copied" | "failed" | null>(null);
  const [revoking, setRevoking] = useState<ReadonlySet<string>>(new Set());
  const [notice, setNotice] = useState<{ key: number; text: string } | null>(null);
  const alertCount = useRef(0);
  const showAlert = (text: string) => setNotice({ key: ++alertCount.current, text });

  const headingId = useId();
  const nameId = useId();
  const nameErrorId = useId();
  const secretId = useId();
  const secretNoteId = useId();
  const nameRef = useRef<HTMLInputElement>(null);
  const secretRef = useRef<HTMLInputElement>(null);
  const listRef = useRef<HTMLUListElement>(null);
  /** Where a revoked key was, so focus can go to its neighbour once it has gone. */
  const focusAfterRevoke = useRef<number | null>(null);

  // The new secret takes focus, selected, so it can be copied at once by keyboard too; once it is
  // put away, focus returns to the Key name field (which only exists again after this render).
  const secretShown = useRef(false);
  useEffect(() => {
    if (created) {
      secretShown.current = true;
      secretRef.current?.focus();
      secretRef.current?.select();
    } else if (secretShown.current) {
      secretShown.current = false;
      nameRef.current?.focus();
    }
  }, [created]);

  useEffect(() => {
    const index = focusAfterRevoke.current;
    if (index === null) return;
    focusAfterRevoke.current = null;
    const buttons = listRef.current?.querySelectorAll<HTMLButtonElement>("button") ?? [];
    (buttons[Math.min(index, buttons.length - 1)] ?? nameRef.current)?.focus();
  }, [keysQuery.data]);

  // Never rejects (nor does copySecret): failures are shown in the panel.
  async function handleCreate(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (creating) return;
    const problem = keyNameError(name);
    setNameError(problem);
    if (problem !== null) {
      nameRef.current?.focus();
      return;
    }
    setCreating(true);
    setNotice(null);
    try {
      const made = await keysRequest<CreatedKey>("/api/keys", { method: "POST", body: { name: name.trim() } });
      // Newest first, as the server lists them.
      queryClient.setQueryData<ApiKey[]>(KEYS_KEY, (list) => [
        { id: made.id, name: made.name, createdAt: made.createdAt },
        ...(list ?? []).filter((k) => k.id !== made.id),
      ]);
      setName("");
      setCopied(null);
      setCreated(made);
    } catch (err) {
      if (!(err instanceof KeysError && err.status === 401)) showAlert(`Couldn’t create the key: ${messageOf(err)}`);
    } finally {
      setCreating(false);
    }
  }

  async function copySecret() {
    if (!created) return;
    try {
      // Missing on pages not served over HTTPS (other than localhost).
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(created.key);
      setCopied("copied");
    } catch {
      setCopied("failed");
      secretRef.current?.focus();
      secretRef.current?.select();
    }
  }

  function dismissSecret() {
    setCreated(null);
    setCopied(null);
  }

  async function revoke(key: ApiKey, index: number) {
    if (revoking.has(key.id)) return;
    setRevoking((ids) => new Set(ids).add(key.id));
    setNotice(null);
    let gone = true;
    try {
      await keysRequest<void>(`/api/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
    } catch (err) {
      // A 404 means it was already revoked (in another tab, say): gone either way.
      gone = err instanceof KeysError && err.status === 404;
      if (!gone && !(err instanceof KeysError && err.status === 401)) {
        showAlert(`Couldn’t revoke “${key.name}”: ${messageOf(err)}`);
      }
    } finally {
      setRevoking((ids) => {
        const rest = new Set(ids);
        rest.delete(key.id);
        return rest;
      });
    }
    if (!gone) return;
    if (listRef.current?.contains(document.activeElement)) focusAfterRevoke.current = index;
    queryClient.setQueryData<ApiKey[]>(KEYS_KEY, (list) => list?.filter((k) => k.id !== key.id));
  }

  return (
    <details className="keys-panel" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary className="keys-summary">API keys for programs</summary>
      <section className="keys-body" aria-labelledby={headingId}>
        <h2 id={headingId} className="visually-hidden">
          API keys
        </h2>
        <p className="keys-intro">
          A program can use the REST API at <code>/api/tasks</code> as you by sending a key in the header{" "}
          <code>Authorization: Bearer &lt;key&gt;</code>. Revoke a key as soon as its program no longer needs it.
        </p>

        {notice && (
          <p className="keys-alert" role="alert" key={notice.key}>
            {notice.text}
          </p>
        )}

        {created ? (
          <div className="keys-secret" role="group" aria-labelledby={secretId}>
            <label htmlFor={secretId + "-input"} id={secretId} className="auth-label">
              New key “{created.name}”
            </label>
            <div className="keys-row">
              <input
                ref={secretRef}
                id={secretId + "-input"}
                className="text-input keys-secret-input"
                type="text"
                readOnly
                value={created.key}
                spellCheck={false}
                autoComplete="off"
                aria-describedby={secretNoteId}
                onFocus={(e) => e.currentTarget.select()}
              />
              <button type="button" className="button button-secondary" onClick={() => void copySecret()}>
                Copy
              </button>
            </div>
            <p id={secretNoteId} className="keys-note">
              Copy it now and keep it somewhere safe: it won’t be shown again.
            </p>
            <p className="keys-copied" role="status">
              {copied === "copied" ? "Copied" : copied === "failed" ? "Couldn’t copy. Select the key and copy it yourself." : ""}
            </p>
            <button type="button" className="button button-primary button-small" onClick={dismissSecret}>
              Done
            </button>
          </div>
        ) : (
          <form className="keys-form" onSubmit={(event) => void handleCreate(event)} noValidate>
            <label htmlFor={nameId} className="auth-label">
              Key name
            </label>
            <div className="keys-row">
              <input
                ref={nameRef}
                id={nameId}
                name="keyName"
                type="text"
                className="text-input"
                placeholder="e.g. backup script"
                autoComplete="off"
                value={name}
                onChange={(e) => {
                  setName(e.target.value);
                  if (nameError !== null) setNameError(keyNameError(e.target.value));
                }}
                aria-invalid={nameError !== null || undefined}
                aria-describedby={nameError !== null ? nameErrorId : undefined}
              />
              <button
                type="submit"
                className="button button-primary"
                aria-disabled={creating || undefined}
                aria-busy={creating || undefined}
              >
                {creating ? "Creating…" : "Create key"}
              </button>
            </div>
            {nameError !== null && (
              <p id={nameErrorId} className="field-error" role="alert">
                {nameError}
              </p>
            )}
          </form>
        )}

        {keysQuery.isPending && open ? (
          <p className="keys-empty" role="status">
            Loading keys…
          </p>
        ) : keysQuery.isError ? (
          <div className="keys-alert" role="alert">
            <p>Couldn’t load your keys: {messageOf(keysQuery.error)}</p>
            <button type="button" className="button button-ghost button-small" onClick={() => void keysQuery.refetch()}>
              Try again
            </button>
          </div>
        ) : keys.length === 0 ? (
          <p className="keys-empty">No keys yet.</p>
        ) : (
          <ul className="keys-list" ref={listRef} aria-label="Your API keys">
            {keys.map((key, index) => {
              const busy = revoking.has(key.id);
              const label = key.name === "" ? "(unnamed)" : key.name;
              return (
                <li key={key.id} className="keys-item" aria-busy={busy || undefined}>
                  <div className="keys-item-text">
                    <span className="keys-name">{label}</span>
                    <span className="keys-meta">
                      Created <When iso={key.createdAt} /> · Last used{" "}
                      {key.lastUsedAt ? <When iso={key.lastUsedAt} withTime /> : "never"}
                    </span>
                  </div>
                  <button
                    type="button"
                    className="button button-danger button-small"
                    aria-label={`Revoke key "${label}"`}
                    aria-disabled={busy || undefined}
                    onClick={() => void revoke(key, index)}
                  >
                    {busy ? "Revoking…" : "Revoke"}
                  </button>
                </li>
              );
            })}
          </ul>
        )}
      </section>
    </details>
  );
}
