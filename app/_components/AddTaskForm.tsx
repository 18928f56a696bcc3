"use client";

import { useId, useRef, useState, type FormEvent, type RefObject } from "react";
import { checkDue, DUE_MAX, DUE_MIN } from "./due";
import { newIdempotencyKey, submissionKey, type FailedSubmission } from "./taskList";
import { checkTitle } from "./title";
import TitleField from "./TitleField";

export default function AddTaskForm({
  onAdd,
  inputRef,
}: {
  /**
   * Saves the task under the submission's idempotency key; resolves to the server's error
   * message, or null once saved.
   */
  onAdd: (title: string, dueOn: string | null, idempotencyKey: string) => Promise<string | null>;
  inputRef: RefObject<HTMLInputElement | null>;
}) {
  const [value, setValue] = useState("");
  const [due, setDue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [dueError, setDueError] = useState<string | null>(null);
  const inputId = useId();
  const dueId = useId();
  const dueErrorId = useId();
  const dueRef = useRef<HTMLInputElement>(null);
  /** The last submission that failed: sending it again retries it, under its key. */
  const lastFailed = useRef<FailedSubmission | null>(null);

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const check = checkTitle(value, "create");
    const dueCheck = checkDue(due, dueRef.current?.validity.badInput ?? false);
    setDueError(dueCheck.ok ? null : dueCheck.message);
    if (!check.ok) {
      setError(check.message);
      inputRef.current?.focus();
      return;
    }
    if (!dueCheck.ok) {
      dueRef.current?.focus();
      return;
    }
    const attempted = { value, due };
    const submission: FailedSubmission = {
      title: check.title,
      dueOn: dueCheck.dueOn,
      idempotencyKey: submissionKey(check.title, dueCheck.dueOn, lastFailed.current, newIdempotencyKey),
    };
    lastFailed.current = null;
    setError(null);
    // Optimistic: the task is already in the list, so the form is ready for the next one.
    setValue("");
    setDue("");
    inputRef.current?.focus();
    void onAdd(submission.title, submission.dueOn, submission.idempotencyKey).then((serverError) => {
      if (serverError === null) return;
      lastFailed.current = submission;
      setError(serverError);
      // Give the text back so nothing typed is lost, unless a new title is already being typed.
      setValue((current) => (current === "" ? attempted.value : current));
      setDue((current) => (current === "" ? attempted.due : current));
    });
  }

  return (
    // POST, so Enter pressed before the page is interactive reloads it instead of navigating to
    // /?title=… (the title in the address bar and history, and every later action posted there).
    <form className="add-form" method="post" onSubmit={handleSubmit} noValidate>
      <div className="add-fields">
        <div className="add-title">
          <label htmlFor={inputId} className="add-label">
            New task
          </label>
          <TitleField
            kind="create"
            inputRef={inputRef}
            id={inputId}
            name="title"
            placeholder="What needs doing?"
            value={value}
            onValueChange={setValue}
            error={error}
            onErrorChange={setError}
          />
        </div>
        <div className="add-due">
          <label htmlFor={dueId} className="add-label">
            Due date
          </label>
          <input
            ref={dueRef}
            id={dueId}
            name="dueOn"
            type="date"
            className="text-input due-input"
            min={DUE_MIN}
            max={DUE_MAX}
            value={due}
            onChange={(e) => {
              setDue(e.target.value);
              if (dueError !== null) {
                const check = checkDue(e.target.value, e.target.validity.badInput);
                setDueError(check.ok ? null : check.message);
              }
            }}
            aria-invalid={dueError !== null || undefined}
            aria-describedby={dueError !== null ? dueErrorId : undefined}
          />
          {dueError !== null && (
            <p id={dueErrorId} className="field-error" role="alert">
              {dueError}
            </p>
          )}
        </div>
        <button type="submit" className="button button-primary add-button">
          Add
        </button>
      </div>
    </form>
  );
}
