"use client";

import { useId, useState, type FormEvent } from "react";
import { clockTime, formatTtl, type Task, type TaskCacheView } from "./labClient";

export type WriteOp =
  | { kind: "add"; title: string }
  | { kind: "toggle"; id: number; done: boolean }
  | { kind: "rename"; id: number; title: string }
  | { kind: "delete"; id: number; title: string }
  | { kind: "read"; id: number }
  | { kind: "evict"; id: number };

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
  const rows = ids.map((id) => describeRow(id, viewById.get(id), taskById.get(id), touched.get(id)));
  const empty = listTasks ? "No tasks yet. Add one above and watch it go into the cache." : "Loading tasks…";

  return (
    <section className="card lab-card" aria-labelledby="lab-tasks-title">
      <div className="lab-section-head">
        <h2 id="lab-tasks-title">Tasks: Postgres and the cache side by side</h2>
        <p className="lab-hint">
          Make a write and watch the cached version follow the Postgres version. Evict a task and read it: the read
          misses, fills the cache from Postgres, and the next read is a hit.
        </p>
      </div>

      <AddForm onAdd={(title) => onWrite({ kind: "add", title })} />

      <p className={`lab-notice${notice?.tone === "error" ? " lab-notice-error" : ""}`} role="status" aria-label="Last action">
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

      {/* A table; on a phone lab.css lays each row out as a card (the roles keep it a table for
          screen readers whatever the CSS display, and the cells' labels are drawn from data-label). */}
      <div className="lab-table-wrap lab-tasks-wrap" role="region" aria-labelledby={captionId} tabIndex={0}>
        <table className="lab-table lab-tasks-table" role="table">
          <caption id={captionId}>
            The first page of tasks, plus any you added or deleted on this visit, refreshed every second.
          </caption>
          <thead role="rowgroup">
            <tr role="row">
              <th scope="col" role="columnheader">
                Id
              </th>
              <th scope="col" role="columnheader">
                Title
              </th>
              <th scope="col" role="columnheader">
                Postgres version
              </th>
              <th scope="col" role="columnheader">
                Cached version
              </th>
              <th scope="col" role="columnheader">
                Status
              </th>
              <th scope="col" role="columnheader">
                TTL left
              </th>
              <th scope="col" role="columnheader">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody role="rowgroup">
            {rows.length === 0 && (
              <tr role="row">
                <td colSpan={7} className="lab-empty" role="cell">
                  {empty}
                </td>
              </tr>
            )}
            {rows.map((row) => (
              <tr
                key={row.id}
                role="row"
                className={row.gone ? "lab-row-gone" : undefined}
                aria-busy={busyIds.has(row.id) || undefined}
                data-task-id={row.id}
              >
                <th scope="row" role="rowheader" className="lab-num lab-id-cell">
                  {row.id}
                </th>
                <td role="cell" className="lab-title-cell">
                  <TitleText row={row} />
                </td>
                <td role="cell" className="lab-num" data-label="Postgres">
                  <PostgresVersion view={row.view} />
                </td>
                <td role="cell" className="lab-num" data-label="Cached">
                  <CachedVersion view={row.view} />
                </td>
                <td role="cell" data-label="Status">
                  <StatusCell view={row.view} />
                </td>
                <td role="cell" className="lab-num" data-label="TTL left">
                  <TtlText view={row.view} />
                </td>
                <td role="cell" className="lab-actions-cell">
                  <RowActions row={row} busy={busyIds.has(row.id)} onWrite={onWrite} />
                </td>
              </tr>
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

/** One task as the table row and the phone card show it. */
type RowModel = {
  id: number;
  view: TaskCacheView | undefined;
  title: string;
  cachedTitle: string | undefined;
  titleDiffers: boolean;
  gone: boolean;
  done: boolean;
};

function describeRow(id: number, view: TaskCacheView | undefined, listTask: Task | undefined, lastTitle: string | undefined): RowModel {
  const cachedTitle = view?.cache.state === "hit" ? view.cache.title : undefined;
  const title = view?.postgres?.title ?? cachedTitle ?? listTask?.title ?? lastTitle ?? "";
  return {
    id,
    view,
    title,
    cachedTitle,
    titleDiffers: Boolean(view?.postgres && cachedTitle !== undefined && cachedTitle !== view.postgres.title),
    gone: view !== undefined && view.postgres === null,
    done: view?.postgres?.done ?? listTask?.done ?? false,
  };
}

function TitleText({ row }: { row: RowModel }) {
  return (
    <>
      <span className={row.done && !row.gone ? "lab-title-done" : undefined}>{row.title || "—"}</span>
      {row.done && !row.gone && (
        <>
          {" "}
          <span className="lab-tag">done</span>
        </>
      )}
      {row.titleDiffers && <span className="lab-subtle lab-cached-title">cache: {row.cachedTitle}</span>}
    </>
  );
}

function PostgresVersion({ view }: { view: TaskCacheView | undefined }) {
  if (view === undefined) return <>…</>;
  return view.postgres ? <>v{view.postgres.version}</> : <Missing text="no row" />;
}

function CachedVersion({ view }: { view: TaskCacheView | undefined }) {
  if (view === undefined) return <>…</>;
  if (view.cache.state === "hit") return <>v{view.cache.version}</>;
  if (view.cache.state === "tombstone") {
    return (
      <>
        v{view.cache.version} <span className="lab-subtle">tombstone</span>
      </>
    );
  }
  return <Missing text="not cached" />;
}

/** Time left of what the cache holds; an evicted entry (a miss) shows none, whatever marker it left. */
function TtlText({ view }: { view: TaskCacheView | undefined }) {
  if (view === undefined) return <>…</>;
  if (view.cache.state === "miss") return <Missing text="nothing cached" />;
  return <>{formatTtl(view.ttlSeconds)}</>;
}

function StatusCell({ view }: { view: TaskCacheView | undefined }) {
  return view === undefined ? <span className="lab-subtle">checking…</span> : <StatusBadge status={view.status} />;
}

function RowActions({ row, busy, onWrite }: { row: RowModel; busy: boolean; onWrite: (op: WriteOp) => void }) {
  const { id, title, done } = row;
  if (row.gone) return <span className="lab-subtle">deleted</span>;
  return (
    <div className="lab-actions">
      <button
        type="button"
        className="button button-secondary button-small"
        aria-label={`Read task ${id}`}
        title="Read it through the store, as the API does: a hit, or a miss that fills the cache"
        disabled={busy}
        onClick={() => onWrite({ kind: "read", id })}
      >
        Read
      </button>
      <button
        type="button"
        className="button button-secondary button-small"
        aria-label={`Evict task ${id}`}
        title="Drop its cache entry: the next read misses and fills it from Postgres"
        disabled={busy}
        onClick={() => onWrite({ kind: "evict", id })}
      >
        Evict
      </button>
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
