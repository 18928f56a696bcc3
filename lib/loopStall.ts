import "server-only";

// How long this process's event loop could not run anything: the time its own timers fired late
// (a long synchronous render, a garbage-collection pause, or the process waiting for a CPU on an
// overloaded machine). A timeout that counts only the rest can't fire because the loop was busy
// while the dependency was answering in time (docs/decisions/017-timeouts-that-starvation-cant-fire.md).

const PERIOD_MS = 20;

let last = 0;
let stalled = 0;
let ticker: ReturnType<typeof setInterval> | undefined;

function tick() {
  const now = performance.now();
  stalled += Math.max(0, now - last - PERIOD_MS);
  last = now;
}

/**
 * Milliseconds the event loop has been stalled since the first call (monotonic): each late tick of
 * a 20 ms ticker adds its lateness, and a tick overdue right now counts as far as it is overdue,
 * so a timer that fires after a stall sees that stall. The ticker starts on the first call and
 * never keeps the process alive.
 */
export function loopStalledMs(): number {
  if (!ticker) {
    last = performance.now();
    ticker = setInterval(tick, PERIOD_MS);
    ticker.unref();
  }
  return stalled + Math.max(0, performance.now() - last - PERIOD_MS);
}
