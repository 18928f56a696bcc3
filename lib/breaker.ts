import "server-only";
import { log } from "./log";
import { loopStalledMs } from "./loopStall";
import type { BreakerState } from "./names";

/** Why a guarded call failed without the dependency answering: the breaker refused it, or it ran out of time. */
export type BreakerRejection = "breaker-open" | "timeout";

export type BreakerOptions = {
  /** What is guarded, for log lines ("cache", "database"). */
  name: string;
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long it stays open before one trial call is let through. */
  cooldownMs: number;
  /**
   * A call fails once it has waited this long with the event loop free to read its answer (time
   * the loop was stalled doesn't count), and at the latest after TIMEOUT_STRETCH times this long,
   * whatever the dependency or the loop does.
   */
  timeoutMs: number;
  /** The error a refused or timed-out call fails with (typed per dependency; never matched by message). */
  rejection: (reason: BreakerRejection, message: string, retryAfterMs: number) => Error;
  /** Whether an error means the dependency is failing (default: every error). Others pass through uncounted. */
  isFailure?: (err: unknown) => boolean;
  now?: () => number;
  /** Cumulative milliseconds the event loop was stalled (default: lib/loopStall.ts). */
  loopStalledMs?: () => number;
  onTransition?: (from: BreakerState, to: BreakerState) => void;
};

/**
 * The most a call's timeout can be stretched by a stalled event loop: a process that can't run at
 * all still gives up on a dependency after this many timeouts. Drivers' own timeouts (ioredis'
 * commandTimeout, Upstash's fetch signal) are set this far out, as a backstop behind the breaker's.
 */
export const TIMEOUT_STRETCH = 4;

/**
 * Timeout plus circuit breaker around every call to a dependency. While open, calls fail at once,
 * so requests don't each wait for a timeout; after the cooldown one call probes the dependency and
 * closes the breaker when it succeeds. The cache's fall back to Postgres; the database's answer 503.
 */
export class CircuitBreaker {
  private state: BreakerState = "closed";
  private failures = 0;
  private openUntil = 0;
  private probing = false;
  /** Calls that failed by timing out, and calls refused at once because the breaker was open. */
  readonly stats = { timeouts: 0, rejected: 0, failures: 0, opened: 0 };
  private readonly now: () => number;
  private readonly stalled: () => number;
  private readonly listeners = new Set<(from: BreakerState, to: BreakerState) => void>();

  constructor(private readonly options: BreakerOptions) {
    this.now = options.now ?? Date.now;
    this.stalled = options.loopStalledMs ?? loopStalledMs;
  }

  /** Calls `listener` on every state change; returns a function that unsubscribes. */
  onTransition(listener: (from: BreakerState, to: BreakerState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get currentState(): BreakerState {
    if (this.state === "open" && this.now() >= this.openUntil) return "half-open";
    return this.state;
  }

  /** How long until a call may be tried again (0 unless open): the Retry-After a refused request gets. */
  get retryAfterMs(): number {
    return this.state === "open" ? Math.max(0, this.openUntil - this.now()) : 0;
  }

  /** Runs `fn` under the timeout and breaker; `key` only names what was touched in the log line. */
  async run<T>(operation: string, fn: () => PromiseLike<T>, key?: string, timeoutMs = this.options.timeoutMs): Promise<T> {
    const state = this.currentState;
    if (state === "open" || (state === "half-open" && this.probing)) {
      this.stats.rejected++;
      throw this.options.rejection("breaker-open", `${this.options.name} breaker open (${operation})`, Math.max(this.retryAfterMs, 1));
    }
    const isProbe = state === "half-open";
    if (isProbe) {
      this.probing = true;
      this.transition("half-open");
    }
    try {
      const result = await this.withTimeout(fn, timeoutMs, operation);
      this.failures = 0;
      if (this.state !== "closed") this.transition("closed");
      return result;
    } catch (err) {
      if (this.options.isFailure && !this.options.isFailure(err)) {
        // The dependency answered (with an error about this call): it is up.
        this.failures = 0;
        if (this.state !== "closed") this.transition("closed");
        throw err;
      }
      this.failures += 1;
      this.stats.failures++;
      if (isProbe || this.failures >= this.options.failureThreshold) {
        this.openUntil = this.now() + this.options.cooldownMs;
        if (this.state !== "open") {
          this.stats.opened++;
          log.warn(`${this.options.name} breaker opened`, { operation, key, failures: this.failures, error: err instanceof Error ? err.message : String(err) });
          this.transition("open");
        }
      }
      throw err;
    } finally {
      if (isProbe) this.probing = false;
    }
  }

  private transition(to: BreakerState) {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    if (to === "closed") log.info(`${this.options.name} breaker closed`, { from });
    this.options.onTransition?.(from, to);
    for (const l of this.listeners) l(from, to);
  }

  // Async, so a throw from fn() before it returned a promise is a rejection like any other failure,
  // and comes before any timer is armed.
  //
  // Starvation can't fire it. The timer counts only the time the loop was free to run: when it
  // comes due after a stall (a long render, a GC pause, no CPU to be had), the stall is given back
  // and the timer armed again for the rest. A loop stalled all the time still gives up, once
  // TIMEOUT_STRETCH × ms have passed. Either way, a timer that fired late gets one more turn of the
  // loop before it decides: libuv runs due timers before it reads sockets, so a reply that arrived
  // during the stall is waiting to be read, and a timer re-armed now can only fire after this
  // turn's poll phase has read it.
  private async withTimeout<T>(fn: () => PromiseLike<T>, ms: number, operation: string): Promise<T> {
    const pending = fn();
    const started = this.now();
    const stalledAtStart = this.stalled();
    const latest = ms * TIMEOUT_STRETCH;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let dueAt = started + ms;
    let lastTurn = false;
    const timeout = new Promise<never>((_, reject) => {
      const arm = (delay: number) => {
        dueAt = this.now() + delay;
        timer = setTimeout(due, delay);
      };
      const due = () => {
        const now = this.now();
        const elapsed = now - started;
        const free = elapsed - (this.stalled() - stalledAtStart);
        if (free < ms && elapsed < latest) return arm(Math.max(1, Math.min(ms - free, latest - elapsed)));
        if (now - dueAt > 1 && !lastTurn) {
          lastTurn = true;
          return arm(1);
        }
        this.stats.timeouts++;
        reject(this.options.rejection("timeout", `${this.options.name} ${operation} timed out after ${ms} ms`, 0));
      };
      timer = setTimeout(due, ms);
    });
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
  }
}
