"use client";

import { useEffect, useId, useRef, useState, type FocusEvent, type KeyboardEvent } from "react";
import type { Task } from "@/lib/tasks/schema";
import { checkTitle } from "./title";
import TitleField from "./TitleField";

type Props = {
  task: Task;
  /** A write to this task is in flight. */
  busy: boolean;
  onToggle: (task: Task, done: boolean) => void;
  onRename: (task: Task, title: string) => void;
  onDelete: (task: Task) => void;
};

export default function TaskItem({ task, busy, onToggle, onRename, onDelete }: Props) {
  // A negative id is an optimistic task the server hasn't confirmed yet.
  const saving = task.id < 0;
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(task.title);
  const [error, setError] = useState<string | null>(null);

  const checkboxId = useId();
  const hintId = useId();

  const inputRef = useRef<HTMLInputElement>(null);
  const editButtonRef = useRef<HTMLButtonElement>(null);
  const saveButtonRef = useRef<HTMLButtonElement>(null);
  const cancelButtonRef = useRef<HTMLButtonElement>(null);
  /** Set once the editor is closing, so the blur that follows Enter/Escape doesn't save twice. */
  const closing = useRef(false);
  /** Whether focus should go back to the Edit button when the editor closes. */
  const returnFocus = useRef(false);

  useEffect(() => {
    if (editing) {
      inputRef.current?.focus();
      inputRef.current?.select();
    } else if (returnFocus.current) {
      returnFocus.current = false;
      editButtonRef.current?.focus();
    }
  }, [editing]);

  function startEditing() {
    closing.current = false;
    setDraft(task.title);
    setError(null);
    setEditing(true);
  }

  function save(viaKeyboard: boolean) {
    if (closing.current) return;
    const check = checkTitle(draft, "update");
    if (!check.ok) {
      setError(check.message);
      return;
    }
    closing.current = true;
    returnFocus.current = viaKeyboard;
    setEditing(false);
    setError(null);
    if (check.title !== task.title) onRename(task, check.title);
  }

  function cancel() {
    closing.current = true;
    returnFocus.current = true;
    setEditing(false);
    setError(null);
  }

  function handleKeyDown(event: KeyboardEvent<HTMLInputElement>) {
    if (event.key === "Enter") {
      event.preventDefault();
      save(true);
    } else if (event.key === "Escape") {
      event.preventDefault();
      cancel();
    }
  }

  function handleBlur(event: FocusEvent<HTMLInputElement>) {
    // Moving to this row's Save or Cancel button lets that button decide.
    const next = event.relatedTarget;
    if (next && (next === saveButtonRef.current || next === cancelButtonRef.current)) return;
    save(false);
  }

  const className = ["task", task.done ? "task-done" : "", saving ? "task-saving" : "", editing ? "task-editing" : ""]
    .filter(Boolean)
    .join(" ");

  return (
    <li className={className} aria-busy={saving || busy || undefined} data-task-id={task.id}>
      <input
        id={checkboxId}
        type="checkbox"
        className="task-check"
        checked={task.done}
        disabled={saving}
        aria-label={task.title}
        onChange={(e) => onToggle(task, e.target.checked)}
      />

      {editing ? (
        <div className="task-editor">
          <TitleField
            kind="update"
            inputRef={inputRef}
            inline
            label={`Edit title of "${task.title}"`}
            value={draft}
            onValueChange={setDraft}
            error={error}
            onErrorChange={setError}
            describedBy={hintId}
            onKeyDown={handleKeyDown}
            onBlur={handleBlur}
          >
            <p id={hintId} className="visually-hidden">
              Press Enter to save or Escape to cancel.
            </p>
          </TitleField>
        </div>
      ) : (
        <label htmlFor={checkboxId} className="task-title">
          {task.title}
          {(saving || busy) && <span className="task-status"> Saving…</span>}
        </label>
      )}

      <div className="task-actions">
        {editing ? (
          <>
            <button
              ref={saveButtonRef}
              type="button"
              className="button button-primary button-small"
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => save(true)}
            >
              Save
            </button>
            <button
              ref={cancelButtonRef}
              type="button"
              className="button button-ghost button-small"
              onMouseDown={(e) => e.preventDefault()}
              onClick={cancel}
            >
              Cancel
            </button>
          </>
        ) : (
          <>
            <button
              ref={editButtonRef}
              type="button"
              className="button button-ghost button-small"
              onClick={startEditing}
              disabled={saving}
              aria-label={`Edit "${task.title}"`}
            >
              Edit
            </button>
            <button
              type="button"
              className="button button-danger button-small"
              onClick={() => onDelete(task)}
              disabled={saving}
              aria-label={`Delete "${task.title}"`}
            >
              Delete
            </button>
          </>
        )}
      </div>
    </li>
  );
}

