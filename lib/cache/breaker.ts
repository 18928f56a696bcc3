import { log } from "../log";
import { CacheUnavailableError } from "./types";

export type BreakerState = "closed" | "open" | "half-open";

export type BreakerOptions = {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long it stays open before one trial call is let through. */
  cooldownMs: number;
  /** Every call fails after this long, whatever the driver does. */
  timeoutMs: number;
  now?: () => number;
  onTransition?: (from: BreakerState, to: BreakerState) => void;
};

/**
 * Timeout plus circuit breaker around every cache call. While open, calls fail at once with
 * CacheUnavailableError, so requests go to Postgres without waiting for a timeout each; after the
 * cooldown one call probes Redis and closes the breaker when it succeeds.
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

  /** Runs `fn` under the timeout and breaker; `key` only names what was touched in the log line. */
  async run<T>(operation: string, fn: () => Promise<T>, key?: string): Promise<T> {
    const state = this.currentState;
    if (state === "open" || (state === "half-open" && this.probing)) {
      this.stats.rejected++;
      throw new CacheUnavailableError(`cache breaker open (${operation})`, "breaker-open");
    }
    const isProbe = state === "half-open";
    if (isProbe) {
      this.probing = true;
      this.transition("half-open");
    }
    try {
      const result = await withTimeout(fn(), this.options.timeoutMs, operation);
      this.failures = 0;
      if (this.state !== "closed") this.transition("closed");
      return result;
    } catch (err) {
      this.failures += 1;
      this.stats.failures++;
      if (err instanceof CacheUnavailableError && err.timedOut) this.stats.timeouts++;
      if (isProbe || this.failures >= this.options.failureThreshold) {
        this.openUntil = this.now() + this.options.cooldownMs;
        if (this.state !== "open") {
          this.stats.opened++;
          log.warn("cache breaker opened", { operation, key, failures: this.failures, error: err instanceof Error ? err.message : String(err) });
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
    if (to === "closed") log.info("cache breaker closed", { from });
    this.options.onTransition?.(from, to);
    for (const l of this.listeners) l(from, to);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, operation: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CacheUnavailableError(`cache ${operation} timed out after ${ms} ms`, "timeout")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
