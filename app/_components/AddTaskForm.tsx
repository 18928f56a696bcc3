"use client";

import { useId, useRef, useState, type FormEvent, type RefObject } from "react";
import { newIdempotencyKey, submissionKey, type FailedSubmission } from "./taskList";
import { checkTitle } from "./title";
import TitleField from "./TitleField";

export default function AddTaskForm({
  onAdd,
  inputRef,
}: {
  /**
   * Saves the title under the submission's idempotency key; resolves to the server's error
   * message, or null once saved.
   */
  onAdd: (title: string, idempotencyKey: string) => Promise<string | null>;
  inputRef: RefObject<HTMLInputElement | null>;
}) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const inputId = useId();
  /** The last submission that failed: sending its title again retries it, under its key. */
  const lastFailed = useRef<FailedSubmission | null>(null);

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const check = checkTitle(value, "create");
    if (!check.ok) {
      setError(check.message);
      inputRef.current?.focus();
      return;
    }
    const attempted = value;
    const submission: FailedSubmission = {
      title: check.title,
      idempotencyKey: submissionKey(check.title, lastFailed.current, newIdempotencyKey),
    };
    lastFailed.current = null;
    setError(null);
    // Optimistic: the task is already in the list, so the field is ready for the next one.
    setValue("");
    inputRef.current?.focus();
    void onAdd(submission.title, submission.idempotencyKey).then((serverError) => {
      if (serverError === null) return;
      lastFailed.current = submission;
      setError(serverError);
      // Give the text back so nothing typed is lost, unless a new title is already being typed.
      setValue((current) => (current === "" ? attempted : current));
    });
  }

  return (
    // POST, so Enter pressed before the page is interactive reloads it instead of navigating to
    // /?title=… (the title in the address bar and history, and every later action posted there).
    <form className="add-form" method="post" onSubmit={handleSubmit} noValidate>
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
        rowClassName="add-row"
      >
        <button type="submit" className="button button-primary">
          Add
        </button>
      </TitleField>
    </form>
  );
}
