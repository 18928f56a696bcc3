"use client";

import { EVENT_KINDS, MAX_EVENTS, clockTime, describeEvent, type CacheEvent, type CacheEventKind } from "./labClient";

/** What each kind of event means: the legend, the counters and the feed all use these words. */
export const KIND_MEANING: Record<CacheEventKind, string> = {
  hit: "a read was answered from the cache, without asking Postgres",
  miss: "a read found nothing usable in the cache (never cached, evicted, or no cached list), so it read Postgres",
  fill: "what a miss read from Postgres was copied into the cache (compare-and-set), so the next read is a hit",
  bypass: "a read skipped the cache (down, breaker open, or repairs owed to you): Postgres alone answered",
  "write-through": "a write reached Postgres, then the cache (compare-and-set)",
  refused: "the cache already held a newer version, so it kept that",
  "stale-epoch": "the cache was flushed or restarted since the write began, so the write refused itself",
  tombstone: "a delete left a marker so no late write can bring the task back",
  "repair-recorded": "a cache write failed; the task is queued to be rewritten from Postgres",
  repair: "a queued task was rewritten from Postgres",
  breaker: "the circuit breaker changed state",
  evict: "you dropped a task's cache entry (the lab's Evict): its next read is a miss",
  flush: "you flushed your cache (the lab's Flush): your epoch ended, so every entry and list reads as a miss",
};

export function KindBadge({ kind }: { kind: CacheEventKind }) {
  return <span className={`lab-badge lab-kind lab-kind-${kind}`}>{kind}</span>;
}

export default function EventFeed({ events, loading }: { events: CacheEvent[] | undefined; loading: boolean }) {
  const list = events ?? [];
  return (
    <section className="card lab-card" aria-labelledby="lab-events-title">
      <div className="lab-section-head">
        <h2 id="lab-events-title">Cache events</h2>
        <p className="lab-hint">
          Newest first; the last {MAX_EVENTS} are kept, from every server of this app. Reads are listed beside writes; the lab&apos;s own look at the
          cache every second is not a read, so it is not listed.
        </p>
      </div>
      <div className="lab-events-scroll" role="region" aria-label="Cache events, scrollable" tabIndex={0}>
        <ol className="lab-events" aria-label="Cache events" aria-live="polite" aria-relevant="additions">
          {list.map((event) => (
            <li key={event.seq} className="lab-event">
              <time dateTime={event.at} className="lab-event-time">
                {clockTime(new Date(event.at))}
              </time>{" "}
              <KindBadge kind={event.kind} />{" "}
              <span className="lab-event-task">{event.taskId !== undefined ? `task ${event.taskId}` : <Dash text="no task" />}</span>{" "}
              <span className="lab-event-version">
                {event.version !== undefined ? `v${event.version}` : <Dash text="no version" />}
              </span>{" "}
              <span className="lab-event-detail">
                {describeEvent(event)}
                {event.detail && describeEvent(event) !== event.detail && (
                  <code className="lab-subtle"> {event.detail}</code>
                )}
                {event.instance && <span className="lab-subtle"> · on server {event.instance}</span>}
              </span>
            </li>
          ))}
        </ol>
        {list.length === 0 && (
          <p className="lab-empty">{loading ? "Loading events…" : "No cache events yet. Read or write a task above."}</p>
        )}
      </div>
      <details className="lab-legend">
        <summary>What the events mean</summary>
        <dl>
          {EVENT_KINDS.map((kind) => (
            <div key={kind}>
              <dt>
                <KindBadge kind={kind} />
              </dt>
              <dd>{KIND_MEANING[kind]}</dd>
            </div>
          ))}
        </dl>
      </details>
    </section>
  );
}

function Dash({ text }: { text: string }) {
  return (
    <>
      <span aria-hidden="true" className="lab-subtle">
        —
      </span>
      <span className="visually-hidden">{text}</span>
    </>
  );
}
