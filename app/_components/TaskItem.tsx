"use client";

import { useEffect, useId, useRef, useState, type FocusEvent, type KeyboardEvent } from "react";
import type { Task, TaskPatch } from "@/lib/tasks/schema";
import { checkDue, DUE_MAX, DUE_MIN, dueState, formatDue } from "./due";
import { editPatch, isEmptyPatch } from "./taskList";
import { checkTitle } from "./title";
import TitleField from "./TitleField";

type Props = {
  task: Task;
  /** A write to this task is in flight. */
  busy: boolean;
  /** The browser's local date, or null before it is known (the server's render). */
  today: string | null;
  onToggle: (task: Task, done: boolean) => void;
  /** A title and/or due-date change (only what changed). */
  onSave: (task: Task, patch: TaskPatch) => void;
  onDelete: (task: Task) => void;
  /** The one hidden "Double-click, or press Enter or F2…" hint every row's title points to. */
  titleHintId: string;
};

export default function TaskItem({ task, busy, today, onToggle, onSave, onDelete, titleHintId }: Props) {
  // A negative id is an optimistic task the server hasn't confirmed yet.
  const saving = task.id < 0;
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(task.title);
  const [dueDraft, setDueDraft] = useState(task.dueOn ?? "");
  const [error, setError] = useState<string | null>(null);
  const [dueError, setDueError] = useState<string | null>(null);

  const idBase = useId();
  const hintId = `${idBase}-hint`;
  const dueId = `${idBase}-due`;
  const dueErrorId = `${idBase}-due-error`;

  const inputRef = useRef<HTMLInputElement>(null);
  const dueRef = useRef<HTMLInputElement>(null);
  const titleRef = useRef<HTMLSpanElement>(null);
  const editButtonRef = useRef<HTMLButtonElement>(null);
  /** Set once the editor is closing, so the blur that follows Enter/Escape doesn't save twice. */
  const closing = useRef(false);
  /** Whether focus should go back where the edit began (the title or the Edit button) when the editor closes. */
  const returnFocus = useRef(false);
  const openedFrom = useRef<"title" | "button">("button");

  useEffect(() => {
    if (editing) {
      inputRef.current?.focus();
      inputRef.current?.select();
    } else if (returnFocus.current) {
      returnFocus.current = false;
      (openedFrom.current === "title" ? titleRef : editButtonRef).current?.focus();
    }
  }, [editing]);

  function startEditing(from: "title" | "button") {
    if (saving) return;
    openedFrom.current = from;
    closing.current = false;
    setDraft(task.title);
    setDueDraft(task.dueOn ?? "");
    setError(null);
    setDueError(null);
    setEditing(true);
  }

  function save(viaKeyboard: boolean) {
    if (closing.current) return;
    const check = checkTitle(draft, "update");
    const due = checkDue(dueDraft, dueRef.current?.validity.badInput ?? false);
    setError(check.ok ? null : check.message);
    setDueError(due.ok ? null : due.message);
    if (!check.ok || !due.ok) {
      if (viaKeyboard) (!check.ok ? inputRef : dueRef).current?.focus();
      return;
    }
    closing.current = true;
    returnFocus.current = viaKeyboard;
    setEditing(false);
    const patch = editPatch(task, check.title, due.dueOn);
    if (!isEmptyPatch(patch)) onSave(task, patch);
  }

  function cancel() {
    closing.current = true;
    returnFocus.current = true;
    setEditing(false);
    setError(null);
    setDueError(null);
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

  function handleTitleKeyDown(event: KeyboardEvent<HTMLSpanElement>) {
    if ((event.key === "Enter" || event.key === "F2") && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      startEditing("title");
    }
  }

  /** Focus leaving the row's editor (not to its own fields or buttons) saves, as Enter does. */
  function handleEditorBlur(event: FocusEvent<HTMLLIElement>) {
    if (!editing) return;
    const next = event.relatedTarget;
    if (next instanceof Node && event.currentTarget.contains(next)) return;
    save(false);
  }

  const className = ["task", task.done ? "task-done" : "", saving ? "task-saving" : "", editing ? "task-editing" : ""]
    .filter(Boolean)
    .join(" ");
  const state = dueState(task.dueOn, task.done, today);

  return (
    <li className={className} aria-busy={saving || busy || undefined} data-task-id={task.id} onBlur={handleEditorBlur}>
      {/* The checkbox is its own target: the label around it only makes the tap area 44 px wide
          on a phone; the title beside it is not part of it. */}
      <label className="task-check-target">
        <input
          type="checkbox"
          className="task-check"
          checked={task.done}
          disabled={saving}
          aria-label={task.title}
          onChange={(e) => onToggle(task, e.target.checked)}
        />
      </label>

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
          >
            <p id={hintId} className="visually-hidden">
              Press Enter to save or Escape to cancel.
            </p>
          </TitleField>
          <div className="due-edit">
            <label htmlFor={dueId} className="due-edit-label">
              Due date
            </label>
            <input
              ref={dueRef}
              id={dueId}
              type="date"
              className="text-input text-input-inline due-input"
              aria-label={`Due date of "${task.title}"`}
              min={DUE_MIN}
              max={DUE_MAX}
              value={dueDraft}
              onChange={(e) => {
                setDueDraft(e.target.value);
                if (dueError !== null) {
                  const due = checkDue(e.target.value, e.target.validity.badInput);
                  setDueError(due.ok ? null : due.message);
                }
              }}
              onKeyDown={handleKeyDown}
              aria-invalid={dueError !== null || undefined}
              aria-describedby={dueError !== null ? `${dueErrorId} ${hintId}` : hintId}
            />
            {dueDraft !== "" && (
              <button
                type="button"
                className="button button-ghost button-small"
                aria-label={`Clear the due date of "${task.title}"`}
                onClick={() => {
                  setDueDraft("");
                  setDueError(null);
                  dueRef.current?.focus();
                }}
              >
                Clear
              </button>
            )}
          </div>
          {dueError !== null && (
            <p id={dueErrorId} className="field-error" role="alert">
              {dueError}
            </p>
          )}
        </div>
      ) : (
        <div className="task-main">
          {/* Focusable, so the keyboard can edit from here (Enter or F2) as a double-click does. */}
          <span
            ref={titleRef}
            className="task-title"
            tabIndex={saving ? undefined : 0}
            aria-describedby={saving ? undefined : titleHintId}
            onDoubleClick={() => startEditing("title")}
            onKeyDown={handleTitleKeyDown}
          >
            {task.title}
            {(saving || busy) && <span className="task-status"> Saving…</span>}
          </span>
          {task.dueOn !== null && (
            <span className={state ? `task-due task-due-${state}` : "task-due"} data-testid="task-due">
              {state === "overdue" && <span className="due-badge due-badge-overdue">Overdue</span>}
              {state === "today" && <span className="due-badge due-badge-today">Today</span>}
              <time dateTime={task.dueOn}>Due {formatDue(task.dueOn, today)}</time>
            </span>
          )}
        </div>
      )}

      <div className="task-actions">
        {editing ? (
          <>
            <button
              type="button"
              className="button button-primary button-small"
              onMouseDown={(e) => e.preventDefault()}
              onClick={() => save(true)}
            >
              Save
            </button>
            <button
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
            {/* Words on a wide screen, icons on a phone (globals.css); the name says which task. */}
            <button
              ref={editButtonRef}
              type="button"
              className="button button-ghost button-small task-action"
              onClick={() => startEditing("button")}
              disabled={saving}
              aria-label={`Edit “${task.title}”`}
            >
              <span className="task-action-icon task-action-icon-edit" aria-hidden="true" />
              <span className="task-action-word">Edit</span>
            </button>
            <button
              type="button"
              className="button button-danger button-small task-action"
              onClick={() => onDelete(task)}
              disabled={saving}
              aria-label={`Delete “${task.title}”`}
            >
              <span className="task-action-icon task-action-icon-delete" aria-hidden="true" />
              <span className="task-action-word">Delete</span>
            </button>
          </>
        )}
      </div>
    </li>
  );
}
