import type { IncomingMessage, Server as HttpServer } from "node:http";
import type { Server as HttpsServer } from "node:https";
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

/** An event counted before its outcome is known; `giveBack()` un-counts it when it turns out not to count. */
export type Attempt = { verdict: Verdict; giveBack(): Promise<void> };

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
  private async count(name: RateRuleName, subject: string): Promise<{ count: number; rule: RateRule; retryAfterSeconds: number; giveBack(): Promise<void> }> {
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

/**
 * The client's address. X-Forwarded-For is read from the right: each of the `trustedProxyHops`
 * proxies in front of the app appended the address it saw, and the last entry is the socket's
 * (trustPeerAddress puts it there), so the entry `trustedProxyHops` places left of the last is the
 * one the outermost trusted proxy saw. Entries further left are the client's to choose and are
 * never used. Fewer entries than that: the first.
 */
export function clientAddress(req: Request, trustedProxyHops: number): string {
  const entries = (req.headers.get("x-forwarded-for") ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) return req.headers.get("x-real-ip")?.trim() || "unknown";
  return entries[Math.max(0, entries.length - 1 - trustedProxyHops)] as string;
}

/**
 * X-Forwarded-For as the app must see it, given what came in and the socket's address: with no
 * trusted proxy, only the socket (whatever the client wrote is dropped); behind proxies, what they
 * sent plus the socket, which is the nearest proxy.
 */
export function forwardedForWithPeer(received: string | string[] | undefined, peer: string | undefined, trustedProxyHops: number): string {
  // A dual-stack socket names an IPv4 client ::ffff:a.b.c.d; proxies write a.b.c.d: one bucket.
  const socket = peer?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "") || "unknown";
  const prior = (Array.isArray(received) ? received.join(", ") : (received ?? "")).trim();
  return trustedProxyHops === 0 || prior === "" ? socket : `${prior}, ${socket}`;
}

const PEER_HOOK = Symbol.for("writethrough-tasks.peerAddressHook");
const PEER_REWRITTEN = Symbol.for("writethrough-tasks.peerAddressRewritten");
// 'checkContinue' and 'checkExpectation' replace 'request' for requests with an Expect header.
const REQUEST_EVENTS = new Set<string | symbol>(["request", "checkContinue", "checkExpectation"]);

/**
 * Makes X-Forwarded-For trustworthy for every request `target` (a server, or a server class's
 * prototype) emits: rewritten by forwardedForWithPeer before any listener, Next.js included, reads
 * it. Next.js only fills the header with the socket's address when the client sent none, so a
 * client reaching it directly could otherwise name any address it liked (docs/decisions/008).
 * Installs once per target; later calls change nothing.
 */
export function trustPeerAddress(target: HttpServer | HttpsServer, trustedProxyHops: number): void {
  if (Object.prototype.hasOwnProperty.call(target, PEER_HOOK)) return;
  Object.defineProperty(target, PEER_HOOK, { value: true });
  const emit = target.emit;
  target.emit = function emitWithPeerAddress(this: unknown, event: string | symbol, ...args: unknown[]): boolean {
    const req = args[0] as (IncomingMessage & { [PEER_REWRITTEN]?: true }) | undefined;
    // Once per request: a listener may re-emit a 'checkContinue' request as 'request'.
    if (REQUEST_EVENTS.has(event) && req && !req[PEER_REWRITTEN]) {
      req[PEER_REWRITTEN] = true;
      req.headers["x-forwarded-for"] = forwardedForWithPeer(req.headers["x-forwarded-for"], req.socket?.remoteAddress, trustedProxyHops);
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof emit;
}
