import "server-only";
import { AsyncLocalStorage } from "node:async_hooks";
import type { Sql } from "postgres";
import { CircuitBreaker, type BreakerRejection } from "../breaker";
import { isDatabaseUnavailable } from "./errors";

/** A statement refused at once (the database is known to be down) or cut off at its deadline. */
export class DatabaseUnavailableError extends Error {
  readonly code: "DB_BREAKER_OPEN" | "DB_TIMEOUT";
  constructor(
    readonly reason: BreakerRejection,
    message: string,
    /** When the breaker lets a statement through again (0: unknown; try again soon). */
    readonly retryAfterMs: number,
    /** True when the statement never left this process (refused, or its budget was spent first). */
    readonly notSent = reason === "breaker-open",
  ) {
    super(message);
    this.name = "DatabaseUnavailableError";
    this.code = reason === "breaker-open" ? "DB_BREAKER_OPEN" : "DB_TIMEOUT";
  }
}

const budgets = new AsyncLocalStorage<{ leftMs: number }>();

/**
 * Runs `fn` with a budget of `ms` for the time all its Postgres statements together may take: each
 * statement gets what is left (or its own deadline, if sooner) and uses up what it took, so an
 * operation that makes several statements still waits on Postgres for at most `ms` in all. Time
 * spent elsewhere (the cache, this process) is not counted. Inside another budget, the smaller.
 */
export function withDatabaseBudget<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const outer = budgets.getStore();
  return budgets.run({ leftMs: Math.min(ms, outer?.leftMs ?? Infinity) }, fn);
}

/** What is left of the current operation's budget (Infinity outside one). */
export function databaseBudgetLeftMs(): number {
  return budgets.getStore()?.leftMs ?? Infinity;
}

/**
 * Counts `ms` against the current operation's budget: for waits that are waiting on Postgres by
 * another road (another instance's list-index build, which reads Postgres).
 */
export function spendDatabaseBudget(ms: number): void {
  const budget = budgets.getStore();
  if (budget) budget.leftMs -= ms;
}

export type GuardOptions = {
  /** Client-side deadline per statement, and per transaction. */
  timeoutMs: number;
  breakerFailures: number;
  breakerCooldownMs: number;
  now?: () => number;
};

export type GuardedPool = {
  /** What Drizzle is given: postgres.js' interface, every statement and transaction under the guard. */
  client: Sql;
  breaker: CircuitBreaker;
  /** The pool in use now (health checks ping it directly, outside the breaker). */
  current(): Sql;
  /** Times the pool was replaced after a statement ran past its deadline. */
  readonly resets: number;
  end(): Promise<void>;
};

type PendingQuery = PromiseLike<unknown> & { values(): PromiseLike<unknown> };

/**
 * Puts every statement of a postgres.js pool under a deadline and a circuit breaker, so no request
 * waits on Postgres for longer than DATABASE_TIMEOUT_MS, and while Postgres is known to be down
 * requests fail at once instead of queueing.
 *
 * A statement past its deadline may be stuck on a connection that will never answer (a proxy or
 * load balancer with a dead backend) or may still be delivered later. Either way its connection
 * can't be trusted, and postgres.js can't say which connection it is: the whole pool is replaced,
 * and the old one destroyed at once, which closes its sockets (a stuck statement dies with them,
 * whatever the network holds) and fails everything queued on it. The server's own
 * statement_timeout fires first whenever the server is there to enforce it.
 */
export function guardPool(makePool: () => Sql, options: GuardOptions): GuardedPool {
  const first = makePool();
  let pool = first;
  let resets = 0;
  const breaker = new CircuitBreaker({
    name: "database",
    failureThreshold: options.breakerFailures,
    cooldownMs: options.breakerCooldownMs,
    timeoutMs: options.timeoutMs,
    now: options.now,
    rejection: (reason, message, retryAfterMs) => new DatabaseUnavailableError(reason, message, retryAfterMs),
    isFailure: isDatabaseUnavailable,
  });

  const replace = (stuck: Sql) => {
    if (pool !== stuck) return; // another statement's timeout replaced it already
    pool = makePool();
    // Drizzle configured the first pool's type parsers (dates arrive as strings); every pool needs the same.
    Object.assign(pool.options.parsers, first.options.parsers);
    Object.assign(pool.options.serializers, first.options.serializers);
    resets++;
    void stuck.end({ timeout: 0 }).catch(() => undefined);
  };

  const now = options.now ?? Date.now;
  const guarded = async <T>(operation: string, start: (pool: Sql) => PromiseLike<T>): Promise<T> => {
    const used = pool;
    const budget = budgets.getStore();
    const timeoutMs = budget ? Math.min(options.timeoutMs, budget.leftMs) : options.timeoutMs;
    // The operation's budget is spent (earlier statements took it): this one is not even sent.
    if (timeoutMs <= 0) throw new DatabaseUnavailableError("timeout", `database budget spent before ${operation}`, 0, true);
    const started = now();
    try {
      return await breaker.run(operation, () => start(used), undefined, timeoutMs);
    } catch (err) {
      // Cut short by the operation's budget, the statement may be healthy, only slow: its pool stays.
      if (err instanceof DatabaseUnavailableError && err.reason === "timeout" && timeoutMs === options.timeoutMs) replace(used);
      throw err;
    } finally {
      if (budget) budget.leftMs -= now() - started;
    }
  };

  // A lazy stand-in for postgres.js' PendingQuery: nothing is sent until it is awaited, and then
  // only if the breaker lets it through. Drizzle only ever awaits it, optionally after .values().
  const statement = (args: unknown[]): PendingQuery => {
    let values = false;
    return {
      values() {
        values = true;
        return this;
      },
      then(onFulfilled, onRejected) {
        return guarded("statement", (p) => {
          const q = (p.unsafe as (...a: unknown[]) => PendingQuery)(...args);
          return values ? q.values() : q;
        }).then(onFulfilled, onRejected);
      },
    };
  };

  const client = new Proxy(first, {
    get(_target, prop) {
      if (prop === "unsafe") return (...args: unknown[]) => statement(args);
      if (prop === "begin") return (...args: unknown[]) => guarded("transaction", (p) => (p.begin as (...a: unknown[]) => PromiseLike<unknown>)(...args));
      const value = (pool as unknown as Record<string | symbol, unknown>)[prop];
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(pool) : value;
    },
  });

  return {
    client,
    breaker,
    current: () => pool,
    get resets() {
      return resets;
    },
    end: () => pool.end({ timeout: 5 }),
  };
}

