"use client";

import { useId, useState, type FormEvent, type RefObject } from "react";
import { createTaskSchema, updateTaskSchema } from "@/lib/tasks/schema";

type TitleCheck = { ok: true; title: string } | { ok: false; message: string };

/**
 * Checks a title with the same zod schema the server action parses it with (create or update), so
 * the field shows exactly the message the server would give, before anything is sent.
 */
export function checkTitle(value: string, kind: "create" | "update"): TitleCheck {
  const parsed =
    kind === "create" ? createTaskSchema.safeParse({ title: value }) : updateTaskSchema.safeParse({ title: value });
  if (parsed.success && parsed.data.title !== undefined) return { ok: true, title: parsed.data.title };
  const message = parsed.success ? undefined : parsed.error.issues[0]?.message;
  return { ok: false, message: message ?? "This title can't be used." };
}

/** The message for the first problem with a title, or null when it is acceptable. */
export function titleError(value: string, kind: "create" | "update"): string | null {
  const check = checkTitle(value, kind);
  return check.ok ? null : check.message;
}

export default function AddTaskForm({
  onAdd,
  inputRef,
}: {
  /** Saves the title; resolves to the server's error message, or null once saved. */
  onAdd: (title: string) => Promise<string | null>;
  inputRef: RefObject<HTMLInputElement | null>;
}) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const inputId = useId();
  const errorId = useId();

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const check = checkTitle(value, "create");
    if (!check.ok) {
      setError(check.message);
      inputRef.current?.focus();
      return;
    }
    const attempted = value;
    setError(null);
    // Optimistic: the task is already in the list, so the field is ready for the next one.
    setValue("");
    inputRef.current?.focus();
    void onAdd(check.title).then((serverError) => {
      if (serverError === null) return;
      setError(serverError);
      // Give the text back so nothing typed is lost, unless a new title is already being typed.
      setValue((current) => (current === "" ? attempted : current));
    });
  }

  return (
    <form className="add-form" onSubmit={handleSubmit} noValidate>
      <label htmlFor={inputId} className="add-label">
        New task
      </label>
      <div className="add-row">
        <input
          ref={inputRef}
          id={inputId}
          name="title"
          type="text"
          className="text-input"
          placeholder="What needs doing?"
          autoComplete="off"
          value={value}
          onChange={(e) => {
            setValue(e.target.value);
            // Once an error is showing, keep it in step with what is typed.
            if (error !== null) setError(titleError(e.target.value, "create"));
          }}
          aria-invalid={error !== null || undefined}
          aria-describedby={error !== null ? errorId : undefined}
        />
        <button type="submit" className="button button-primary">
          Add
        </button>
      </div>
      {error !== null && (
        <p id={errorId} className="field-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
