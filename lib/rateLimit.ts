import "server-only";
import type { Cache } from "./cache";
import type { RateRule } from "./env";
import { TaskError } from "./tasks/errors";

export type RateLimits = {
  /** Failed sign-ins from one address, and for one email. */
  signInFailuresPerIp: RateRule;
  signInFailuresPerEmail: RateRule;
  /** Accounts made from one address. */
  signUpsPerIp: RateRule;
  /** Task and key writes by one user. */
  writesPerUser: RateRule;
};

export type RateRuleName = keyof RateLimits;

type Verdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** An event counted before its outcome is known; `giveBack()` un-counts it when it turns out not to count. */
export type Attempt = { verdict: Verdict; giveBack: () => Promise<void> };

const NOTHING_TO_GIVE_BACK = async () => {};

const MEMORY_MAX_KEYS = 100_000;

/**
 * Fixed-window counters, in the cache when it is Redis (so every instance shares them) and in this
 * process otherwise: with the memory driver, or whenever the cache fails, so a limiter never fails
 * a request. Keys name the rule, the subject (an address, an email, a user) and the window.
 */
export class RateLimiter {
  private readonly local = new Map<string, { count: number; expiresAt: number }>();

  constructor(
    private readonly options: { limits: RateLimits; disabled: boolean; cache: Cache | null; now?: () => number },
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private window(rule: RateRule): { key: string; retryAfterSeconds: number } {
    const nowSeconds = this.now() / 1000;
    const index = Math.floor(nowSeconds / rule.windowSeconds);
    return { key: String(index), retryAfterSeconds: Math.max(1, Math.ceil((index + 1) * rule.windowSeconds - nowSeconds)) };
  }

  private shared(): Cache | null {
    const cache = this.options.cache;
    return cache && cache.driver.name !== "memory" ? cache : null;
  }

  private localCount(key: string, add: 1 | -1, ttlSeconds: number): number {
    const now = this.now();
    let slot = this.local.get(key);
    if (add < 0) {
      // A window that has ended has nothing left to give back to.
      if (slot && slot.expiresAt > now && slot.count > 0) slot.count -= 1;
      return slot?.count ?? 0;
    }
    if (!slot || slot.expiresAt <= now) {
      if (this.local.size >= MEMORY_MAX_KEYS) this.local.delete(this.local.keys().next().value as string);
      slot = { count: 0, expiresAt: now + ttlSeconds * 1000 };
      this.local.set(key, slot);
    }
    slot.count += 1;
    return slot.count;
  }

  /** Counts one event (atomically, in Redis when shared) and returns how to take it back. */
  private async count(name: RateRuleName, subject: string): Promise<{ count: number; rule: RateRule; retryAfterSeconds: number; giveBack: () => Promise<void> }> {
    const rule = this.options.limits[name];
    const w = this.window(rule);
    const key = `rl:${name}:${subject}:${w.key}`;
    const cache = this.shared();
    if (cache) {
      try {
        const count = await cache.run("authSet", () => cache.driver.incrementValue(key, rule.windowSeconds), "rate limit");
        const giveBack = async () => {
          // Not given back when the cache fails now: the event stays counted, which errs on the safe side.
          await cache.run("authSet", () => cache.driver.decrementValue(key), "rate limit").catch(() => undefined);
        };
        return { count, rule, retryAfterSeconds: w.retryAfterSeconds, giveBack };
      } catch {
        // The cache is down: count in this process instead; never fail the request for it.
      }
    }
    const count = this.localCount(key, 1, rule.windowSeconds);
    return { count, rule, retryAfterSeconds: w.retryAfterSeconds, giveBack: async () => void this.localCount(key, -1, rule.windowSeconds) };
  }

  /**
   * Counts one event now, before its outcome is known, and says whether it is within the limit.
   * Concurrent attempts each get their own count, so no more than `limit` of them are ever allowed
   * in a window, however many arrive at once; `giveBack()` un-counts one that turned out not to
   * count (a sign-in that succeeded, or one refused before it was tried).
   */
  async attempt(name: RateRuleName, subject: string): Promise<Attempt> {
    if (this.options.disabled) return { verdict: { allowed: true }, giveBack: NOTHING_TO_GIVE_BACK };
    const { count, rule, retryAfterSeconds, giveBack } = await this.count(name, subject);
    return { verdict: count <= rule.limit ? { allowed: true } : { allowed: false, retryAfterSeconds }, giveBack };
  }

  /** Counts one event and says whether it is within the limit. */
  async hit(name: RateRuleName, subject: string): Promise<Verdict> {
    return (await this.attempt(name, subject)).verdict;
  }

  /** Counts one event, or throws the 429 for it. */
  async enforce(name: RateRuleName, subject: string, message: string): Promise<void> {
    const verdict = await this.hit(name, subject);
    if (!verdict.allowed) throw rateLimited(message, verdict.retryAfterSeconds);
  }
}

export function rateLimited(message: string, retryAfterSeconds: number): TaskError {
  return new TaskError("rate_limited", message, { retryAfterSeconds });
}
