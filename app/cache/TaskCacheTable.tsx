"use client";

import { useId, useState, type FormEvent } from "react";
import { clockTime, formatTtl, type Task, type TaskCacheView } from "./labClient";

export type WriteOp =
  | { kind: "add"; title: string }
  | { kind: "toggle"; id: number; done: boolean }
  | { kind: "rename"; id: number; title: string }
  | { kind: "delete"; id: number; title: string };

type Status = TaskCacheView["status"];

const STATUS_TEXT: Record<Status, { label: string; meaning: string }> = {
  fresh: { label: "fresh", meaning: "the cache holds exactly what Postgres holds" },
  stale: { label: "stale", meaning: "the cache holds an older or different version than Postgres" },
  absent: { label: "absent", meaning: "not cached; the next read fills it from Postgres" },
  tombstone: { label: "tombstone", meaning: "deleted in Postgres; the cache remembers the delete" },
  ghost: { label: "ghost", meaning: "cached, but Postgres no longer has the task" },
  unknown: { label: "unknown", meaning: "the cache could not be read just now (down or breaker open)" },
};

const TITLE_MAX_CHARS = 500;
const RENAMED_SUFFIX = / \(renamed at \d{2}:\d{2}:\d{2}\)$/;

/** "Buy milk" → "Buy milk (renamed at 14:03:09)"; renaming again replaces the time. */
function renamedTitle(title: string, at: Date): string {
  const suffix = ` (renamed at ${clockTime(at)})`;
  const base = [...title.replace(RENAMED_SUFFIX, "")].slice(0, TITLE_MAX_CHARS - suffix.length).join("");
  return `${base}${suffix}`;
}

type Props = {
  listTasks: Task[] | undefined;
  listError: string | null;
  ids: number[];
  views: TaskCacheView[] | undefined;
  touched: ReadonlyMap<number, string>;
  busyIds: ReadonlySet<number>;
  notice: { tone: "info" | "error"; text: string } | null;
  onDismissNotice: () => void;
  onWrite: (op: WriteOp) => void;
};

export default function TaskCacheTable({
  listTasks,
  listError,
  ids,
  views,
  touched,
  busyIds,
  notice,
  onDismissNotice,
  onWrite,
}: Props) {
  const viewById = new Map((views ?? []).map((v) => [v.id, v]));
  const taskById = new Map((listTasks ?? []).map((t) => [t.id, t]));
  const captionId = useId();

  return (
    <section className="card lab-card" aria-labelledby="lab-tasks-title">
      <div className="lab-section-head">
        <h2 id="lab-tasks-title">Tasks: Postgres and the cache side by side</h2>
        <p className="lab-hint">Make a write and watch the cached version follow the Postgres version.</p>
      </div>

      <AddForm onAdd={(title) => onWrite({ kind: "add", title })} />

      <p className={`lab-notice${notice?.tone === "error" ? " lab-notice-error" : ""}`} role="status" aria-label="Last write">
        {notice && (
          <>
            <span>{notice.text}</span>
            <button type="button" className="button button-ghost button-small" onClick={onDismissNotice}>
              Dismiss
            </button>
          </>
        )}
      </p>

      {listError !== null && (
        <p className="list-error" role="alert">
          Couldn&apos;t load the tasks: {listError}
        </p>
      )}

      <div className="lab-table-wrap" role="region" aria-labelledby={captionId} tabIndex={0}>
        <table className="lab-table">
          <caption id={captionId}>
            The first page of tasks, plus any you added or deleted on this visit, refreshed every second.
          </caption>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Title</th>
              <th scope="col">Postgres version</th>
              <th scope="col">Cached version</th>
              <th scope="col">Status</th>
              <th scope="col">TTL left</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {ids.length === 0 && (
              <tr>
                <td colSpan={7} className="lab-empty">
                  {listTasks ? "No tasks yet. Add one above and watch it go into the cache." : "Loading tasks…"}
                </td>
              </tr>
            )}
            {ids.map((id) => (
              <TaskRow
                key={id}
                id={id}
                view={viewById.get(id)}
                listTask={taskById.get(id)}
                lastTitle={touched.get(id)}
                busy={busyIds.has(id)}
                onWrite={onWrite}
              />
            ))}
          </tbody>
        </table>
      </div>

      <details className="lab-legend">
        <summary>What the statuses mean</summary>
        <dl>
          {(Object.keys(STATUS_TEXT) as Status[]).map((status) => (
            <div key={status}>
              <dt>
                <StatusBadge status={status} />
              </dt>
              <dd>{STATUS_TEXT[status].meaning}</dd>
            </div>
          ))}
        </dl>
      </details>
    </section>
  );
}

function TaskRow({
  id,
  view,
  listTask,
  lastTitle,
  busy,
  onWrite,
}: {
  id: number;
  view: TaskCacheView | undefined;
  listTask: Task | undefined;
  lastTitle: string | undefined;
  busy: boolean;
  onWrite: (op: WriteOp) => void;
}) {
  const cachedTitle = view?.cache.state === "hit" ? view.cache.title : undefined;
  const title = view?.postgres?.title ?? cachedTitle ?? listTask?.title ?? lastTitle ?? "";
  const gone = view !== undefined && view.postgres === null;
  const done = view?.postgres?.done ?? listTask?.done ?? false;
  const titleDiffers = view?.postgres && cachedTitle !== undefined && cachedTitle !== view.postgres.title;

  return (
    <tr className={gone ? "lab-row-gone" : undefined} aria-busy={busy || undefined} data-task-id={id}>
      <th scope="row" className="lab-num">
        {id}
      </th>
      <td className="lab-title-cell">
        <span className={done && !gone ? "lab-title-done" : undefined}>{title || "—"}</span>
        {done && !gone && (
          <>
            {" "}
            <span className="lab-tag">done</span>
          </>
        )}
        {titleDiffers && <span className="lab-subtle">cache: {cachedTitle}</span>}
      </td>
      <td className="lab-num">
        {view === undefined ? "…" : view.postgres ? `v${view.postgres.version}` : <Missing text="no row" />}
      </td>
      <td className="lab-num">
        {view === undefined ? (
          "…"
        ) : view.cache.state === "hit" ? (
          `v${view.cache.version}`
        ) : view.cache.state === "tombstone" ? (
          <>
            v{view.cache.version} <span className="lab-subtle">tombstone</span>
          </>
        ) : (
          <Missing text="not cached" />
        )}
      </td>
      <td>{view === undefined ? <span className="lab-subtle">checking…</span> : <StatusBadge status={view.status} />}</td>
      <td className="lab-num">{view === undefined ? "…" : formatTtl(view.ttlSeconds)}</td>
      <td>
        {gone ? (
          <span className="lab-subtle">deleted</span>
        ) : (
          <div className="lab-actions">
            <button
              type="button"
              className="button button-secondary button-small"
              aria-label={`Toggle done for task ${id}`}
              disabled={busy}
              onClick={() => onWrite({ kind: "toggle", id, done: !done })}
            >
              Toggle done
            </button>
            <button
              type="button"
              className="button button-secondary button-small"
              aria-label={`Rename task ${id}`}
              disabled={busy}
              onClick={() => onWrite({ kind: "rename", id, title: renamedTitle(title || `Task ${id}`, new Date()) })}
            >
              Rename
            </button>
            <button
              type="button"
              className="button button-danger button-small"
              aria-label={`Delete task ${id}`}
              disabled={busy}
              onClick={() => onWrite({ kind: "delete", id, title })}
            >
              Delete
            </button>
          </div>
        )}
      </td>
    </tr>
  );
}

function Missing({ text }: { text: string }) {
  return (
    <>
      <span aria-hidden="true">—</span> <span className="lab-subtle">{text}</span>
    </>
  );
}

export function StatusBadge({ status }: { status: Status }) {
  return (
    // The icon before the word comes from CSS, so the cell's text is just the status.
    <span className={`lab-badge lab-status lab-status-${status}`} title={STATUS_TEXT[status].meaning}>
      {STATUS_TEXT[status].label}
    </span>
  );
}

function AddForm({ onAdd }: { onAdd: (title: string) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const inputId = useId();
  const errorId = useId();

  function handleSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const title = value.trim();
    if (title === "") {
      setError("Title must not be empty.");
      return;
    }
    setError(null);
    setValue("");
    onAdd(title);
  }

  return (
    <form className="lab-add" onSubmit={handleSubmit} noValidate>
      <label htmlFor={inputId} className="add-label">
        New task title
      </label>
      <div className="add-row">
        <input
          id={inputId}
          name="title"
          type="text"
          className="text-input"
          placeholder="Add a task and watch it go through"
          autoComplete="off"
          value={value}
          onChange={(e) => {
            setValue(e.target.value);
            if (error !== null) setError(null);
          }}
          aria-invalid={error !== null || undefined}
          aria-describedby={error !== null ? errorId : undefined}
        />
        <button type="submit" className="button button-primary">
          Add task
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
