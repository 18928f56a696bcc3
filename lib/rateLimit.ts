import type { Cache } from "./cache";
import { TaskError } from "./tasks/errors";

/** A limit: at most `limit` events per fixed window of `windowSeconds`. */
export type RateRule = { limit: number; windowSeconds: number };

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

/** `10/10m` → 10 per 600 s. Units: s, m, h. */
export function parseRateRule(text: string): RateRule | null {
  const match = /^\s*([1-9][0-9]{0,6})\s*\/\s*([1-9][0-9]{0,5})\s*([smh])\s*$/.exec(text);
  if (!match) return null;
  const seconds = Number(match[2]) * (match[3] === "h" ? 3600 : match[3] === "m" ? 60 : 1);
  return seconds <= 86_400 ? { limit: Number(match[1]), windowSeconds: seconds } : null;
}

type Verdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

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

  private localCount(key: string, add: number, ttlSeconds: number): number {
    const now = this.now();
    let slot = this.local.get(key);
    if (!slot || slot.expiresAt <= now) {
      if (this.local.size >= MEMORY_MAX_KEYS) this.local.delete(this.local.keys().next().value as string);
      slot = { count: 0, expiresAt: now + ttlSeconds * 1000 };
      this.local.set(key, slot);
    }
    slot.count += add;
    return slot.count;
  }

  private async count(name: RateRuleName, subject: string, add: 0 | 1): Promise<{ count: number; rule: RateRule; retryAfterSeconds: number }> {
    const rule = this.options.limits[name];
    const w = this.window(rule);
    const key = `rl:${name}:${subject}:${w.key}`;
    const cache = this.shared();
    if (cache) {
      try {
        const count = add
          ? await cache.run("authSet", () => cache.driver.incrementValue(key, rule.windowSeconds), "rate limit")
          : Number((await cache.run("authGet", () => cache.driver.getValue(key), "rate limit")) ?? 0);
        return { count, rule, retryAfterSeconds: w.retryAfterSeconds };
      } catch {
        // The cache is down: count in this process instead; never fail the request for it.
      }
    }
    return { count: this.localCount(key, add, rule.windowSeconds), rule, retryAfterSeconds: w.retryAfterSeconds };
  }

  /** Counts one event and says whether it is within the limit. */
  async hit(name: RateRuleName, subject: string): Promise<Verdict> {
    if (this.options.disabled) return { allowed: true };
    const { count, rule, retryAfterSeconds } = await this.count(name, subject, 1);
    return count <= rule.limit ? { allowed: true } : { allowed: false, retryAfterSeconds };
  }

  /** Says whether the limit is already used up, without counting anything. */
  async check(name: RateRuleName, subject: string): Promise<Verdict> {
    if (this.options.disabled) return { allowed: true };
    const { count, rule, retryAfterSeconds } = await this.count(name, subject, 0);
    return count < rule.limit ? { allowed: true } : { allowed: false, retryAfterSeconds };
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

/**
 * The client's address as the nearest proxy (or Next.js itself, which fills X-Forwarded-For with
 * the socket's address when there is none) saw it: the last X-Forwarded-For entry.
 */
export function clientAddress(req: Request): string {
  const forwarded = req.headers.get("x-forwarded-for");
  const last = forwarded?.split(",").pop()?.trim();
  return last || req.headers.get("x-real-ip") || "unknown";
}
