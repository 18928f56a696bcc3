"use client";

import { useId, useRef, useState, type FormEvent, type ReactNode, type RefObject } from "react";
import { z } from "zod";
import { countChars } from "@/lib/tasks/rules";
import { fullNavigation } from "./fullNavigation";

export type AuthMode = "sign-in" | "sign-up";
type Field = "name" | "email" | "password";
export type AuthValues = { name: string; email: string; password: string };
export type FieldErrors = Partial<Record<Field, string>>;

// The limits better-auth is configured with (lib/auth/index.ts), repeated here because that module
// is server-only.
export const NAME_MAX_CHARS = 100;
export const PASSWORD_MIN_CHARS = 8;
export const PASSWORD_MAX_CHARS = 128;

// better-auth checks addresses with this same zod schema, so the form never passes one it refuses.
const emailSchema = z.email();

const FIELD_ORDER: readonly Field[] = ["name", "email", "password"];

const UNREACHABLE = "We can’t reach the service right now. Check your connection and try again in a moment.";
const GENERIC = "Something went wrong. Please try again.";

/** Where the other form lives, keeping `next` so the person still ends up where they were going. */
function authHref(mode: AuthMode, next: string): string {
  return next === "/" ? `/${mode}` : `/${mode}?${new URLSearchParams({ next })}`;
}

/** Problems with the fields, checked before anything is sent; an empty object when there are none. */
export function checkAuthFields(mode: AuthMode, values: AuthValues): FieldErrors {
  const errors: FieldErrors = {};
  if (mode === "sign-up") {
    const name = values.name.trim();
    if (name === "") errors.name = "Enter your name.";
    else if (countChars(name) > NAME_MAX_CHARS) errors.name = `Use at most ${NAME_MAX_CHARS} characters.`;
  }
  const email = values.email.trim();
  if (email === "") errors.email = "Enter your email address.";
  else if (!emailSchema.safeParse(email).success) errors.email = "Enter an email address like name@example.com.";
  // Never trimmed: spaces are part of a password.
  const length = countChars(values.password);
  if (length === 0) errors.password = mode === "sign-in" ? "Enter your password." : "Choose a password.";
  else if (length < PASSWORD_MIN_CHARS) {
    errors.password =
      mode === "sign-in" ? `Passwords have at least ${PASSWORD_MIN_CHARS} characters.` : `Use at least ${PASSWORD_MIN_CHARS} characters.`;
  } else if (length > PASSWORD_MAX_CHARS) {
    errors.password =
      mode === "sign-in" ? `Passwords have at most ${PASSWORD_MAX_CHARS} characters.` : `Use at most ${PASSWORD_MAX_CHARS} characters.`;
  }
  return errors;
}

/** What went wrong, beside a field when it concerns one; `existingAccount` adds a link to sign in. */
export type AuthFailure = { field?: Field; message: string; existingAccount?: boolean };

/** The code and message of an error body: better-auth's `{ code, message }` or ours `{ error: { code, message } }`. */
function readError(body: unknown): { code?: string; message?: string } {
  if (typeof body !== "object" || body === null) return {};
  const outer = body as { code?: unknown; message?: unknown; error?: unknown };
  const inner = typeof outer.error === "object" && outer.error !== null ? (outer.error as { code?: unknown; message?: unknown }) : outer;
  return {
    code: typeof inner.code === "string" ? inner.code : undefined,
    message: typeof inner.message === "string" && inner.message.trim() !== "" ? inner.message : undefined,
  };
}

/** Plain words for a refused sign-in or sign-up. Only our own messages are shown verbatim. */
export function describeAuthFailure(status: number, body: unknown, retryAfter: string | null = null): AuthFailure {
  const { code, message } = readError(body);
  if (status === 429) {
    const seconds = Number(retryAfter);
    const wait = Number.isFinite(seconds) && seconds > 0 ? ` Try again in ${Math.ceil(seconds)} seconds.` : " Try again in a little while.";
    return { message: message ?? `Too many attempts.${wait}` };
  }
  if (status === 503) return { message: UNREACHABLE };
  switch (code) {
    case "INVALID_EMAIL_OR_PASSWORD":
      // One message for both: never tell which of the two was wrong.
      return { message: "Wrong email or password." };
    case "INVALID_EMAIL":
      return { field: "email", message: "Enter an email address like name@example.com." };
    case "USER_ALREADY_EXISTS":
    case "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL":
      return { field: "email", message: "An account with this email already exists.", existingAccount: true };
    case "PASSWORD_TOO_SHORT":
      return { field: "password", message: `Use at least ${PASSWORD_MIN_CHARS} characters.` };
    case "PASSWORD_TOO_LONG":
      return { field: "password", message: `Use at most ${PASSWORD_MAX_CHARS} characters.` };
    case "INVALID_ORIGIN":
      return { message: "The request was refused because it didn’t come from this site. Reload the page and try again." };
  }
  if (status === 401) return { message: "Wrong email or password." };
  return { message: GENERIC };
}

/** Sends the form; resolves to null once signed in, else to what went wrong. */
async function submitAuth(mode: AuthMode, values: AuthValues): Promise<AuthFailure | null> {
  const body =
    mode === "sign-up"
      ? { name: values.name.trim(), email: values.email.trim(), password: values.password }
      : { email: values.email.trim(), password: values.password };
  let res: Response;
  try {
    res = await fetch(`/api/auth/${mode}/email`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    return { message: UNREACHABLE };
  }
  if (res.ok) {
    // Read to its end: the full navigation that follows would cut the answer off mid-body, and
    // Chromium logs that request as aborted.
    await res.arrayBuffer().catch(() => undefined);
    return null;
  }
  const parsed: unknown = await res.json().catch(() => null);
  return describeAuthFailure(res.status, parsed, res.headers.get("Retry-After"));
}

function TextField({
  label,
  error,
  errorKey,
  hint,
  inputRef,
  ...input
}: {
  label: string;
  error: ReactNode;
  /** Changes on every submit, so an unchanged error is announced again. */
  errorKey: number;
  hint?: string;
  inputRef: RefObject<HTMLInputElement | null>;
  name: Field;
  type: "text" | "email" | "password";
  autoComplete: string;
  value: string;
  onChange: (value: string) => void;
  autoCapitalize?: string;
  spellCheck?: boolean;
}) {
  const inputId = useId();
  const hintId = useId();
  const errorId = useId();
  // The hint gives way to the error, which says the same thing more precisely.
  const showHint = hint !== undefined && !error;
  const describedBy = error ? errorId : showHint ? hintId : undefined;
  return (
    <div className="auth-field">
      <label htmlFor={inputId} className="auth-label">
        {label}
      </label>
      <input
        ref={inputRef}
        id={inputId}
        className="text-input"
        name={input.name}
        type={input.type}
        autoComplete={input.autoComplete}
        autoCapitalize={input.autoCapitalize}
        spellCheck={input.spellCheck}
        value={input.value}
        onChange={(e) => input.onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy}
      />
      {showHint && (
        <p id={hintId} className="auth-hint">
          {hint}
        </p>
      )}
      {error && (
        <p id={errorId} className="field-error" role="alert" key={errorKey}>
          {error}
        </p>
      )}
    </div>
  );
}

export default function AuthForm({
  mode,
  next,
}: {
  mode: AuthMode;
  /** Where to go once signed in: a path on this site, already checked by the page. */
  next: string;
}) {
  const [values, setValues] = useState<AuthValues>({ name: "", email: "", password: "" });
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [existingAccount, setExistingAccount] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const nameRef = useRef<HTMLInputElement>(null);
  const emailRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);
  // Only called from event handlers: refs are never read while rendering.
  const focusField = (field: Field) => ({ name: nameRef, email: emailRef, password: passwordRef })[field].current?.focus();

  function change(field: Field, value: string) {
    const updated = { ...values, [field]: value };
    setValues(updated);
    // Once a field shows an error, keep it in step with what is typed.
    if (fieldErrors[field] !== undefined) {
      setFieldErrors((current) => ({ ...current, [field]: checkAuthFields(mode, updated)[field] }));
      if (field === "email") setExistingAccount(false);
    }
  }

  // Never rejects: submitAuth turns every failure into a message on the form.
  async function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (busy) return;
    setAttempt((n) => n + 1);
    setFormError(null);
    setExistingAccount(false);
    const errors = checkAuthFields(mode, values);
    setFieldErrors(errors);
    const firstInvalid = FIELD_ORDER.find((f) => errors[f] !== undefined);
    if (firstInvalid) {
      focusField(firstInvalid);
      return;
    }

    setBusy(true);
    const failure = await submitAuth(mode, values);
    if (failure === null) {
      // A full navigation, so the server-rendered page sees the new session cookie. The button
      // stays busy until the next page replaces this one.
      fullNavigation(next);
      return;
    }
    setBusy(false);
    if (failure.field) {
      setFieldErrors({ [failure.field]: failure.message });
      setExistingAccount(failure.existingAccount === true);
      focusField(failure.field);
    } else {
      setFormError(failure.message);
    }
  }

  const signUp = mode === "sign-up";
  const emailError =
    fieldErrors.email && existingAccount ? (
      <>
        {fieldErrors.email} <a href={authHref("sign-in", next)}>Sign in instead</a>
      </>
    ) : (
      fieldErrors.email
    );

  return (
    // POST, so a submit before the page is interactive never puts a password in the address bar.
    <form className="auth-form" method="post" onSubmit={(event) => void handleSubmit(event)} noValidate>
      {signUp && (
        <TextField
          label="Name"
          name="name"
          type="text"
          autoComplete="name"
          inputRef={nameRef}
          value={values.name}
          onChange={(v) => change("name", v)}
          error={fieldErrors.name}
          errorKey={attempt}
        />
      )}
      <TextField
        label="Email"
        name="email"
        type="email"
        autoComplete="email"
        autoCapitalize="none"
        spellCheck={false}
        inputRef={emailRef}
        value={values.email}
        onChange={(v) => change("email", v)}
        error={emailError}
        errorKey={attempt}
      />
      <TextField
        label="Password"
        name="password"
        type="password"
        autoComplete={signUp ? "new-password" : "current-password"}
        inputRef={passwordRef}
        value={values.password}
        onChange={(v) => change("password", v)}
        hint={signUp ? `${PASSWORD_MIN_CHARS} to ${PASSWORD_MAX_CHARS} characters.` : undefined}
        error={fieldErrors.password}
        errorKey={attempt}
      />

      {formError !== null && (
        <p className="auth-alert" role="alert" key={attempt}>
          {formError}
        </p>
      )}

      {/* aria-disabled rather than disabled: the button keeps focus while the request runs. */}
      <button
        type="submit"
        className="button button-primary auth-submit"
        aria-disabled={busy || undefined}
        aria-busy={busy || undefined}
      >
        {busy ? (signUp ? "Creating account…" : "Signing in…") : signUp ? "Create account" : "Sign in"}
      </button>

      <p className="auth-switch">
        {signUp ? "Already have an account? " : "New here? "}
        {/* A plain link: each account page loads fresh, as after signing in, up or out, and none is
            prefetched (Chromium logs the prefetch of a no-store page as aborted when it is dropped). */}
        <a href={authHref(signUp ? "sign-in" : "sign-up", next)}>{signUp ? "Sign in" : "Create an account"}</a>
      </p>
    </form>
  );
}
