"use client";

import { useEffect, useRef } from "react";
import type { LiveChange } from "@/lib/live/change";

/** How this page learns of changes made elsewhere: the event stream, or (no live bus on the server) polling. */
export type LiveMode = "stream" | "poll";

/** Polling (Upstash, or no cache): how often, while the tab is visible. */
const POLL_MS = 3_000;
const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;

/**
 * Keeps the page in step with changes made in another tab, on another device or by a program.
 *
 * A check: GET `checkUrl()` with the ETag of the last answer to it in If-None-Match; a 200 with
 * another ETag means something the page shows changed, so `onResync` (the page rereads). The
 * first check compares with `initial`, the page as the server rendered it.
 *
 * "stream": GET /api/tasks/events (Server-Sent Events). Each change goes to `onChanges` (applied
 * by version). At each (re)connection, once the server says `ready`, one check catches what
 * changed while the page was not listening (changes are not replayed); a `resync` event (the
 * server's bus reconnected) rereads at once. A stream the server refused (401 once signed out, 503)
 * is not retried by EventSource itself, so it is reopened here with a growing delay.
 * "poll": a check every few seconds while the tab is visible.
 */
export function useLiveUpdates({
  mode,
  onChanges,
  onResync,
  checkUrl,
  initial,
}: {
  mode: LiveMode;
  onChanges: (changes: LiveChange[]) => void;
  onResync: () => void;
  checkUrl: () => string;
  initial: { url: string; etag: string | null };
}) {
  // The latest callbacks, without reopening the stream when they change.
  const latest = useRef({ onChanges, onResync, checkUrl });
  useEffect(() => {
    latest.current = { onChanges, onResync, checkUrl };
  });
  const last = useRef(initial);

  useEffect(() => {
    /**
     * `conditional`: the server compares (If-None-Match; a 304 costs no body), for polling. Else
     * the page compares the answer's ETag itself: once per connection, and Chromium logs every
     * 304 to a fetch as an aborted request (net::ERR_ABORTED), which would hide real ones.
     */
    const check = async (conditional: boolean) => {
      const url = latest.current.checkUrl();
      const known = last.current.url === url ? last.current.etag : null;
      let res: Response;
      try {
        res = await fetch(url, { cache: "no-store", headers: conditional && known ? { "if-none-match": known } : {} });
      } catch {
        return; // offline for a moment: the next check (or reconnection) tries again
      }
      // Read to the end, whatever it is: an unread body keeps the request open (and cancelling it is an abort).
      await res.arrayBuffer().catch(() => undefined);
      if (res.status !== 200) return; // 304: unchanged; anything else: the next check tries again
      const etag = res.headers.get("etag");
      last.current = { url, etag };
      // Changed, or nothing to compare with (another view, no ETag yet): reread, to be sure.
      if (etag === null || etag !== known) latest.current.onResync();
    };

    if (mode === "poll") {
      let stopped = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = async () => {
        if (document.visibilityState === "visible") await check(true);
        if (!stopped) timer = setTimeout(() => void tick(), POLL_MS);
      };
      timer = setTimeout(() => void tick(), POLL_MS);
      return () => {
        stopped = true;
        clearTimeout(timer);
      };
    }

    if (typeof EventSource === "undefined") return;
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let delay = RECONNECT_MIN_MS;
    let stopped = false;
    const open = () => {
      source = new EventSource("/api/tasks/events");
      source.addEventListener("ready", () => {
        delay = RECONNECT_MIN_MS;
        void check(false);
      });
      source.addEventListener("resync", () => latest.current.onResync());
      source.addEventListener("change", (event) => {
        let change: LiveChange;
        try {
          change = JSON.parse((event as MessageEvent<string>).data) as LiveChange;
        } catch {
          return;
        }
        latest.current.onChanges([change]);
      });
      source.addEventListener("error", () => {
        // CONNECTING: EventSource retries by itself. CLOSED: it gave up (a refusal); reopen later.
        if (!source || source.readyState !== EventSource.CLOSED || stopped) return;
        source.close();
        retry = setTimeout(open, delay);
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
      });
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(retry);
      source?.close();
    };
  }, [mode]);
}
