import "server-only";
import { TaskError } from "../tasks/errors";
import type { LiveBus, LiveChange } from "./bus";

/** A comment line this often keeps proxies (and the browser) from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** How long opening a stream may wait for the bus to subscribe before it answers 503. */
export const SUBSCRIBE_TIMEOUT_MS = 3_000;
/** What the browser waits before reconnecting a dropped stream (the `retry:` field). */
const RETRY_MS = 1_000;
/**
 * Changes buffered for a reader that doesn't read them: past this many the stream is closed (the
 * reader reconnects and rereads) rather than holding a slow reader's backlog in memory.
 */
const BACKLOG_MAX = 1_000;

/**
 * GET /api/tasks/events as a Server-Sent Events stream of one user's changes, from every instance:
 *
 *   event: ready        sent once the subscription is in place: everything published after it
 *   data: {}            reaches this stream, so a reader (re)reads its lists now and has no gap
 *
 *   id: 7               one per task change, in publish order; `id` counts this stream's events
 *   event: change
 *   data: {"op":"update","id":12,"version":4,"task":{...}}
 *
 *   event: resync       the bus reconnected and messages may have been lost: reread
 *
 * A reconnecting reader (EventSource sends Last-Event-ID) gets a fresh `ready`: changes aren't
 * kept, so the reader rereads rather than replaying. Ends when the reader goes away.
 */
export async function liveEventStream(
  bus: LiveBus,
  userId: string,
  signal: AbortSignal,
  options: {
    /**
     * Asked at every heartbeat whether the credential the stream was opened with still holds
     * (signed out, key revoked): false ends the stream, so a signed-out tab stops hearing at once.
     */
    stillAuthorized?: () => Promise<boolean>;
    /** Tests shorten it. */
    heartbeatMs?: number;
  } = {},
): Promise<Response> {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let seq = 0;
  let closed = false;
  let unsubscribe: (() => void) | undefined;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    unsubscribe?.();
    try {
      controller.close();
    } catch {
      // already closed by the reader
    }
  };
  const send = (text: string) => {
    if (closed) return;
    if ((controller.desiredSize ?? 0) < -BACKLOG_MAX) return close();
    controller.enqueue(encoder.encode(text));
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
      },
      cancel: close,
    },
    // desiredSize counts queued messages: below -BACKLOG_MAX the reader has stopped reading.
    { highWaterMark: 0 },
  );

  const subscribed = bus.subscribe(userId, {
    onChanges(changes: LiveChange[]) {
      for (const change of changes) send(`id: ${++seq}\nevent: change\ndata: ${JSON.stringify(change)}\n\n`);
    },
    onGap() {
      send(`event: resync\ndata: {}\n\n`);
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    unsubscribe = await Promise.race([
      subscribed,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("subscribe timed out")), SUBSCRIBE_TIMEOUT_MS))),
    ]);
  } catch (err) {
    // A late subscription is ended as soon as it lands.
    void subscribed.then((end) => end()).catch(() => undefined);
    throw new TaskError("service_unavailable", "Live updates are unavailable right now. Try again shortly.", { cause: err, retryAfterSeconds: 1 });
  } finally {
    clearTimeout(timer);
  }
  if (signal.aborted) {
    close();
  } else {
    signal.addEventListener("abort", close, { once: true });
    send(`retry: ${RETRY_MS}\nevent: ready\ndata: {}\n\n`);
    heartbeat = setInterval(() => {
      send(`: heartbeat\n\n`);
      void options.stillAuthorized?.().then(
        (ok) => ok || close(),
        () => undefined, // couldn't check (a dependency down): keep the stream; the next heartbeat asks again
      );
    }, options.heartbeatMs ?? HEARTBEAT_MS);
    heartbeat.unref?.();
  }
  return new Response(stream, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      // Proxies like nginx would otherwise buffer the stream.
      "x-accel-buffering": "no",
    },
  });
}
