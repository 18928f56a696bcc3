"use client";

import Link from "next/link";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useRef, useState } from "react";
import type { BreakerState } from "@/lib/names";
import AuditPanel from "./AuditPanel";
import EventFeed, { KIND_MEANING, KindBadge } from "./EventFeed";
import RaceDemo from "./RaceDemo";
import TaskCacheTable, { type WriteOp } from "./TaskCacheTable";
import {
  EVENT_KINDS,
  LIST_LIMIT,
  MAX_EVENTS,
  MAX_WATCHED_IDS,
  clockTime,
  formatRatio,
  listedEventCount,
  readTask,
  requestJson,
  sendJson,
  type CacheEvent,
  type CacheState,
  type Task,
} from "./labClient";

const LAB_KEY = ["cache-lab"] as const;
const STATE_KEY = [...LAB_KEY, "state"] as const;
const POLL_MS = 1000;

type Notice = { tone: "info" | "error"; text: string };

/**
 * The cache lab: the first page of tasks with Postgres and the cache side by side, buttons that
 * write through the REST API, an audit, and the cache's event stream, polled every second.
 */
export default function CacheLab() {
  const queryClient = useQueryClient();

  // Ids this visit touched (added or deleted), with the last title seen, so a deleted task's
  // tombstone stays on screen after the task leaves the list.
  const [touched, setTouched] = useState<ReadonlyMap<number, string>>(() => new Map());
  const [busyIds, setBusyIds] = useState<ReadonlySet<number>>(() => new Set());
  const [notice, setNotice] = useState<Notice | null>(null);

  const list = useQuery({
    queryKey: [...LAB_KEY, "list"],
    queryFn: ({ signal }) => requestJson<{ tasks: Task[] }>(`/api/tasks?limit=${LIST_LIMIT}`, { signal }),
    staleTime: 0,
  });

  const ids = useMemo(() => {
    const all = new Set<number>(touched.keys());
    for (const task of list.data?.tasks ?? []) all.add(task.id);
    return [...all].sort((a, b) => b - a).slice(0, MAX_WATCHED_IDS);
  }, [list.data, touched]);
  const idsParam = ids.join(",");

  // Events arrive incrementally (after=<last seq>); the page accumulates them here.
  const lastSeq = useRef(0);
  const eventLog = useRef<CacheEvent[]>([]);

  const state = useQuery({
    queryKey: [...STATE_KEY, idsParam],
    queryFn: async ({ signal }): Promise<CacheState> => {
      const fetchState = (after: number) => {
        const params = new URLSearchParams({ after: String(after) });
        if (idsParam) params.set("ids", idsParam);
        return requestJson<CacheState>(`/api/cache/state?${params.toString()}`, { signal });
      };
      let body = await fetchState(lastSeq.current);
      // Every listed event took the next number, so fewer events than our last number means the
      // server restarted and numbers began again: start over rather than wait for them to catch up.
      if (listedEventCount(body.counts) < lastSeq.current) {
        lastSeq.current = 0;
        eventLog.current = [];
        body = await fetchState(0);
      }
      const fresh = body.events.filter((e) => e.seq > lastSeq.current);
      if (fresh.length > 0) {
        eventLog.current = [...fresh, ...eventLog.current].slice(0, MAX_EVENTS);
        lastSeq.current = Math.max(lastSeq.current, ...fresh.map((e) => e.seq));
      }
      return { ...body, events: eventLog.current };
    },
    refetchInterval: POLL_MS,
    staleTime: 0,
    retry: false,
    placeholderData: keepPreviousData,
  });

  const refresh = () => void queryClient.invalidateQueries({ queryKey: LAB_KEY });
  // Reads and evictions change no task: only the cache side needs a fresh look. (Re-reading the
  // list would be a read of its own, and would fill what was just evicted.)
  const refreshState = () => void queryClient.invalidateQueries({ queryKey: STATE_KEY });

  const write = useMutation({
    mutationFn: async (op: WriteOp): Promise<string> => {
      switch (op.kind) {
        case "add": {
          const task = await sendJson<Task>("/api/tasks", "POST", { title: op.title });
          setTouched((m) => new Map(m).set(task.id, task.title));
          return `Added task ${task.id} at version ${task.version}.`;
        }
        case "toggle": {
          const task = await sendJson<Task>(`/api/tasks/${op.id}`, "PATCH", { done: op.done });
          return `Marked task ${op.id} ${task.done ? "done" : "not done"}: Postgres is now at version ${task.version}.`;
        }
        case "rename": {
          const task = await sendJson<Task>(`/api/tasks/${op.id}`, "PATCH", { title: op.title });
          return `Renamed task ${op.id}: Postgres is now at version ${task.version}.`;
        }
        case "delete":
          await sendJson<void>(`/api/tasks/${op.id}`, "DELETE");
          return `Deleted task ${op.id}: the cache now holds a tombstone for it.`;
        case "read": {
          const { task, cache } = await readTask(op.id);
          if (cache === "HIT") return `Read task ${op.id}: a hit, served from the cache at version ${task.version}.`;
          if (cache === "MISS") return `Read task ${op.id}: a miss, so it was read from Postgres (version ${task.version}) and filled into the cache.`;
          return `Read task ${op.id}: the cache was bypassed, so Postgres answered (version ${task.version}).`;
        }
        case "evict": {
          const { evicted } = await sendJson<{ evicted: boolean }>("/api/cache/evict", "POST", { id: op.id });
          return evicted
            ? `Evicted task ${op.id}: its entry is gone from the cache, and no older version may take its place. Read it: a miss, then a fill.`
            : `Task ${op.id} had no live cache entry to evict (not cached, or a tombstone).`;
        }
      }
    },
    onMutate: (op) => {
      if (op.kind === "add") return;
      if (op.kind === "read" || op.kind === "evict") {
        setBusyIds((s) => new Set(s).add(op.id));
        return;
      }
      setBusyIds((s) => new Set(s).add(op.id));
      // Keep watching a deleted task so its tombstone shows.
      if (op.kind === "delete") setTouched((m) => new Map(m).set(op.id, op.title));
    },
    onSuccess: (text) => setNotice({ tone: "info", text }),
    onError: (err, op) => {
      const what = op.kind === "add" ? "add the task" : `${op.kind} task ${op.id}`;
      setNotice({ tone: "error", text: `Couldn't ${what}: ${err.message}` });
    },
    onSettled: (_data, _err, op) => {
      if (op.kind !== "add") {
        setBusyIds((s) => {
          const next = new Set(s);
          next.delete(op.id);
          return next;
        });
      }
      if (op.kind === "read" || op.kind === "evict") refreshState();
      else refresh();
    },
  });

  const flush = useMutation({
    mutationFn: () => sendJson<{ ids: number }>("/api/cache/flush", "POST", { ids }),
    onSuccess: ({ ids: count }) =>
      setNotice({
        tone: "info",
        text: `Flushed your cache: a new epoch (writes begun before it refuse themselves), your cached lists dropped, and ${count === 1 ? "1 task" : `${count} tasks`} evicted. The next reads miss and fill.`,
      }),
    onError: (err) => setNotice({ tone: "error", text: `Couldn't flush your cache: ${err.message}` }),
    // The tasks are as they were: only the cache side changed. (Re-reading the list now would
    // refill it at once; the next read of each task shows its miss and fill instead.)
    onSettled: refreshState,
  });

  const data = state.data;

  return (
    <main className="lab" aria-labelledby="lab-title">
      <div className="card lab-card">
        <header className="lab-header">
          <div>
            <h1 id="lab-title">Cache lab</h1>
            <p className="lab-lede">
              Every write goes to Postgres first; the same request then writes the new version of the task into the
              cache. Each change raises a task&apos;s version, and the cache only accepts a version newer than the one
              it holds, so a late or repeated write can never move it backwards. A delete leaves a tombstone, a marker
              one version above the last, so a late write can&apos;t bring the task back.
            </p>
          </div>
          <Link href="/" className="button button-secondary button-small lab-back">
            ← Tasks
          </Link>
        </header>

        <div role="group" aria-label="Cache status">
          <dl className="lab-stats">
            <div className="lab-stat">
              <dt>Cache driver</dt>
              <dd>{data ? (data.driver === "none" ? "none (Postgres only)" : data.driver) : "…"}</dd>
            </div>
            <div className="lab-stat">
              <dt>Breaker</dt>
              <dd>{data ? <BreakerBadge state={data.breaker} /> : "…"}</dd>
            </div>
            <div className="lab-stat">
              <dt>Your hit ratio since start</dt>
              <dd>{data ? formatRatio(data.hitRatio) : "…"}</dd>
            </div>
            <div className="lab-stat">
              <dt>Your pending repairs</dt>
              <dd>{data ? data.pendingRepairs : "…"}</dd>
            </div>
            {data?.instance ? (
              <div className="lab-stat">
                <dt>This server</dt>
                <dd>
                  <code>{data.instance}</code>
                </dd>
              </div>
            ) : null}
          </dl>
        </div>

        <div className="lab-controls">
          <button
            type="button"
            className="button button-secondary button-small"
            onClick={() => flush.mutate()}
            disabled={flush.isPending || data?.driver === "none"}
            aria-describedby="lab-flush-hint"
          >
            {flush.isPending ? "Flushing…" : "Flush my cache"}
          </button>
          <p id="lab-flush-hint" className="lab-hint">
            Empties your slot of the cache, as a Redis restart would, and nobody else&apos;s: every read after it misses
            once and fills.
          </p>
        </div>

        {data && (
          <details className="lab-counters">
            <summary>Your counters since the server started</summary>
            <p className="lab-hint">Each counts the events of its kind; the events list shows the latest {MAX_EVENTS} of them.</p>
            <ul>
              {EVENT_KINDS.map((kind) => (
                <li key={kind} title={KIND_MEANING[kind]}>
                  <KindBadge kind={kind} /> <strong>{data.counts[kind] ?? 0}</strong>
                </li>
              ))}
            </ul>
          </details>
        )}

        {state.isError && (
          <p className="lab-poll-error" role="alert">
            Can&apos;t read the cache state: {state.error.message} Retrying every second
            {data ? `; showing what was read at ${clockTime(new Date(state.dataUpdatedAt))}` : ""}.
          </p>
        )}
      </div>

      <TaskCacheTable
        listTasks={list.data?.tasks}
        listError={list.isError ? list.error.message : null}
        ids={ids}
        views={data?.tasks}
        touched={touched}
        busyIds={busyIds}
        notice={notice}
        onDismissNotice={() => setNotice(null)}
        onWrite={(op) => write.mutate(op)}
      />

      <RaceDemo disabled={data?.driver === "none"} />

      <div className="lab-grid">
        <AuditPanel />
        <EventFeed events={data?.events} loading={!data && !state.isError} />
      </div>
    </main>
  );
}

const BREAKER_TEXT: Record<BreakerState, string> = {
  closed: "closed: cache in use",
  "half-open": "half-open: testing the cache",
  open: "open: cache skipped",
};

function BreakerBadge({ state }: { state: BreakerState | null }) {
  if (state === null) return <span className="lab-badge lab-badge-neutral">no cache</span>;
  return <span className={`lab-badge lab-breaker-${state}`}>{BREAKER_TEXT[state]}</span>;
}
