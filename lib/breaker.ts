import "server-only";
import { log } from "./log";
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
  /** Every call fails after this long, whatever the dependency does. */
  timeoutMs: number;
  /** The error a refused or timed-out call fails with (typed per dependency; never matched by message). */
  rejection: (reason: BreakerRejection, message: string, retryAfterMs: number) => Error;
  /** Whether an error means the dependency is failing (default: every error). Others pass through uncounted. */
  isFailure?: (err: unknown) => boolean;
  now?: () => number;
  onTransition?: (from: BreakerState, to: BreakerState) => void;
};

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
  private readonly listeners = new Set<(from: BreakerState, to: BreakerState) => void>();

  constructor(private readonly options: BreakerOptions) {
    this.now = options.now ?? Date.now;
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
  private async withTimeout<T>(fn: () => PromiseLike<T>, ms: number, operation: string): Promise<T> {
    const pending = fn();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.stats.timeouts++;
        reject(this.options.rejection("timeout", `${this.options.name} ${operation} timed out after ${ms} ms`, 0));
      }, ms);
    });
    return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
  }
}
