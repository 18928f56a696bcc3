import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { CircuitBreaker, TIMEOUT_STRETCH, type BreakerOptions, type BreakerRejection } from "@/lib/breaker";
import type { BreakerState } from "@/lib/names";
import { deferred } from "../support/gate";

// Fake timers drive both the breaker's clock (`now`, reading the faked Date) and its timeouts
// (setTimeout): every step below happens at an exact instant, and nothing really sleeps.

class Refused extends Error {
  constructor(
    readonly reason: BreakerRejection,
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** An error the dependency answers with about one call (a constraint, a 404): not an outage. */
class Answered extends Error {}

const THRESHOLD = 3;
const COOLDOWN = 1_000;
const TIMEOUT = 100;

/** The event loop's stalls, as the breaker sees them (lib/loopStall.ts in the app): tests add to it. */
let stalledMs = 0;

function breaker(options: Partial<BreakerOptions> = {}) {
  const transitions: string[] = [];
  const b = new CircuitBreaker({
    name: "thing",
    failureThreshold: THRESHOLD,
    cooldownMs: COOLDOWN,
    timeoutMs: TIMEOUT,
    rejection: (reason, message, retryAfterMs) => new Refused(reason, message, retryAfterMs),
    now: () => Date.now(),
    loopStalledMs: () => stalledMs,
    onTransition: (from, to) => transitions.push(`${from}→${to}`),
    ...options,
  });
  return { b, transitions };
}

const down = () => Promise.reject(new Error("connection refused"));
const up = () => Promise.resolve("ok");
/** A call the dependency never answers. */
const hangs = () => new Promise<never>(() => {});


/** A call the dependency never answers, and a spy that says whether it has settled yet. */
function hangingCall(b: CircuitBreaker) {
  const settled = vi.fn();
  const call = b.run("slow", hangs).catch((err: unknown) => {
    settled();
    return err;
  });
  return { call, settled };
}

async function failTimes(b: CircuitBreaker, n: number) {
  for (let i = 0; i < n; i++) await expect(b.run("op", down)).rejects.toThrow("connection refused");
}

async function openBreaker(b: CircuitBreaker) {
  await failTimes(b, THRESHOLD);
  expect(b.currentState).toBe("open");
}

beforeEach(() => {
  stalledMs = 0;
  vi.useFakeTimers({ now: new Date("2026-01-01T00:00:00Z") });
});
afterEach(() => {
  // No call leaves a timer behind (a timeout cleared on every outcome).
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe("CircuitBreaker", () => {
  test("stays closed below the failure threshold, and a success resets the count", async () => {
    const { b, transitions } = breaker();
    await failTimes(b, THRESHOLD - 1);
    await expect(b.run("op", up)).resolves.toBe("ok");
    await failTimes(b, THRESHOLD - 1);
    expect(b.currentState).toBe("closed");
    expect(b.stats).toEqual({ timeouts: 0, rejected: 0, failures: 2 * (THRESHOLD - 1), opened: 0 });
    expect(transitions).toEqual([]);
  });

  test("opens after exactly failureThreshold consecutive failures", async () => {
    const { b, transitions } = breaker();
    await failTimes(b, THRESHOLD - 1);
    expect(b.currentState).toBe("closed");
    await failTimes(b, 1);
    expect(b.currentState).toBe("open");
    expect(b.stats.opened).toBe(1);
    expect(transitions).toEqual(["closed→open"]);
  });

  test("while open, calls are refused at once with breaker-open and the function is never called", async () => {
    const { b } = breaker();
    await openBreaker(b);
    const fn = vi.fn(up);
    const refused = await b.run("read", fn, "key:1").catch((err: unknown) => err);
    expect(fn).not.toHaveBeenCalled();
    expect(refused).toBeInstanceOf(Refused);
    expect(refused).toMatchObject({ reason: "breaker-open", message: "thing breaker open (read)", retryAfterMs: COOLDOWN });
    expect(b.stats.rejected).toBe(1);
  });

  test("retryAfterMs counts down the cooldown while open, and is 0 when closed or once it has passed", async () => {
    const { b } = breaker();
    expect(b.retryAfterMs).toBe(0);
    await openBreaker(b);
    expect(b.retryAfterMs).toBe(COOLDOWN);
    await vi.advanceTimersByTimeAsync(400);
    expect(b.retryAfterMs).toBe(COOLDOWN - 400);
    await expect(b.run("op", up)).rejects.toMatchObject({ reason: "breaker-open", retryAfterMs: COOLDOWN - 400 });
    await vi.advanceTimersByTimeAsync(COOLDOWN - 400);
    expect(b.retryAfterMs).toBe(0);
    expect(b.currentState).toBe("half-open");
  });

  test("is open until the last millisecond of the cooldown, then half-open", async () => {
    const { b } = breaker();
    await openBreaker(b);
    await vi.advanceTimersByTimeAsync(COOLDOWN - 1);
    expect(b.currentState).toBe("open");
    await expect(b.run("op", up)).rejects.toMatchObject({ reason: "breaker-open", retryAfterMs: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(b.currentState).toBe("half-open");
  });

  test("half-open lets exactly one probe through; calls during the probe are refused without calling fn", async () => {
    const { b, transitions } = breaker();
    await openBreaker(b);
    await vi.advanceTimersByTimeAsync(COOLDOWN);
    const probe = deferred<string>();
    const probeFn = vi.fn(() => probe.promise);
    const probing = b.run("probe", probeFn);
    expect(probeFn).toHaveBeenCalledTimes(1);
    expect(b.currentState).toBe("half-open");

    const others = Array.from({ length: 5 }, () => vi.fn(up));
    const refused = await Promise.all(others.map((fn) => b.run("other", fn).catch((err: unknown) => err)));
    for (const fn of others) expect(fn).not.toHaveBeenCalled();
    // Refused with the smallest Retry-After: the probe's answer is due any moment.
    for (const err of refused) expect(err).toMatchObject({ reason: "breaker-open", retryAfterMs: 1 });
    expect(b.stats.rejected).toBe(5);

    probe.resolve("back");
    await expect(probing).resolves.toBe("back");
    expect(transitions).toEqual(["closed→open", "open→half-open", "half-open→closed"]);
  });

  test("a successful probe closes the breaker and the count starts again from zero", async () => {
    const { b } = breaker();
    await openBreaker(b);
    await vi.advanceTimersByTimeAsync(COOLDOWN);
    await expect(b.run("probe", up)).resolves.toBe("ok");
    expect(b.currentState).toBe("closed");
    expect(b.retryAfterMs).toBe(0);
    await failTimes(b, THRESHOLD - 1);
    expect(b.currentState).toBe("closed");
    await failTimes(b, 1);
    expect(b.currentState).toBe("open");
    expect(b.stats.opened).toBe(2);
  });

  test("a failed probe reopens the breaker for another full cooldown", async () => {
    const { b, transitions } = breaker();
    await openBreaker(b);
    await vi.advanceTimersByTimeAsync(COOLDOWN);
    await expect(b.run("probe", down)).rejects.toThrow("connection refused");
    expect(b.currentState).toBe("open");
    expect(b.retryAfterMs).toBe(COOLDOWN);
    const fn = vi.fn(up);
    await vi.advanceTimersByTimeAsync(COOLDOWN - 1);
    await expect(b.run("op", fn)).rejects.toMatchObject({ reason: "breaker-open", retryAfterMs: 1 });
    expect(fn).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await expect(b.run("probe", fn)).resolves.toBe("ok");
    expect(fn).toHaveBeenCalledTimes(1);
    expect(transitions).toEqual(["closed→open", "open→half-open", "half-open→open", "open→half-open", "half-open→closed"]);
    expect(b.stats.opened).toBe(2);
  });

  test("errors isFailure rejects pass through uncounted: they never open the breaker", async () => {
    const { b, transitions } = breaker({ isFailure: (err) => !(err instanceof Answered) });
    for (let i = 0; i < THRESHOLD * 3; i++) {
      await expect(b.run("op", () => Promise.reject(new Answered("duplicate key")))).rejects.toBeInstanceOf(Answered);
    }
    expect(b.currentState).toBe("closed");
    expect(b.stats.failures).toBe(0);
    expect(transitions).toEqual([]);
  });

  test("an answered error between failures resets the count (the dependency is up)", async () => {
    const { b } = breaker({ isFailure: (err) => !(err instanceof Answered) });
    await failTimes(b, THRESHOLD - 1);
    await expect(b.run("op", () => Promise.reject(new Answered("no such row")))).rejects.toBeInstanceOf(Answered);
    await failTimes(b, THRESHOLD - 1);
    expect(b.currentState).toBe("closed");
    await failTimes(b, 1);
    expect(b.currentState).toBe("open");
  });

  test("a probe answered with an error isFailure rejects closes the breaker", async () => {
    const { b } = breaker({ isFailure: (err) => !(err instanceof Answered) });
    await openBreaker(b);
    await vi.advanceTimersByTimeAsync(COOLDOWN);
    await expect(b.run("probe", () => Promise.reject(new Answered("no such row")))).rejects.toBeInstanceOf(Answered);
    expect(b.currentState).toBe("closed");
  });

  test("a call that takes longer than timeoutMs fails with timeout at that instant, and counts as a failure", async () => {
    const { b } = breaker();
    const { call, settled } = hangingCall(b);
    await vi.advanceTimersByTimeAsync(TIMEOUT - 1);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(await call).toMatchObject({ reason: "timeout", message: "thing slow timed out after 100 ms", retryAfterMs: 0 });
    expect(b.stats).toMatchObject({ timeouts: 1, failures: 1 });
  });

  test("failureThreshold timeouts open the breaker", async () => {
    const { b } = breaker();
    const calls = Array.from({ length: THRESHOLD }, () => b.run("slow", hangs).catch((err: unknown) => err));
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    for (const err of await Promise.all(calls)) expect(err).toMatchObject({ reason: "timeout" });
    expect(b.currentState).toBe("open");
    expect(b.stats).toMatchObject({ timeouts: THRESHOLD, failures: THRESHOLD, opened: 1 });
  });

  test("a per-call timeout overrides timeoutMs", async () => {
    const { b } = breaker();
    const call = b.run("slow", hangs, undefined, 10).catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(10);
    expect(await call).toMatchObject({ reason: "timeout", message: "thing slow timed out after 10 ms" });
  });

  test("an answer just inside the timeout is a success", async () => {
    const { b } = breaker();
    const call = b.run("op", () => new Promise<string>((resolve) => setTimeout(() => resolve("in time"), TIMEOUT - 1)));
    await vi.advanceTimersByTimeAsync(TIMEOUT - 1);
    await expect(call).resolves.toBe("in time");
    expect(b.stats).toMatchObject({ timeouts: 0, failures: 0 });
  });

  test("time the event loop was stalled does not count: the timeout fires that much later", async () => {
    const { b } = breaker();
    const { call, settled } = hangingCall(b);
    await vi.advanceTimersByTimeAsync(30);
    // The loop could run nothing for 50 ms (a long render, a GC pause, no CPU to be had).
    stalledMs += 50;
    await vi.advanceTimersByTimeAsync(TIMEOUT - 30 + 50 - 1);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(await call).toMatchObject({ reason: "timeout", message: "thing slow timed out after 100 ms" });
    expect(b.stats).toMatchObject({ timeouts: 1, failures: 1 });
  });

  test("after a stall, an answer that arrived meanwhile wins over the timer that comes due with it", async () => {
    const { b } = breaker();
    const answer = deferred<string>();
    const call = b.run("op", () => answer.promise);
    await vi.advanceTimersByTimeAsync(30);
    stalledMs += 50;
    // The reply lands at the instant the breaker's timer comes due, and after it in the timer queue
    // (as a reply waiting in the socket when a stalled loop wakes: libuv runs due timers first).
    setTimeout(() => answer.resolve("waiting to be read"), TIMEOUT - 30);
    await vi.advanceTimersByTimeAsync(TIMEOUT - 30);
    await expect(call).resolves.toBe("waiting to be read");
    expect(b.stats).toMatchObject({ timeouts: 0, failures: 0 });
  });

  test("a stall longer than the stretch still lets an answer that arrived meanwhile win: a late timer gives the loop one more turn", async () => {
    const { b } = breaker();
    const answer = deferred<string>();
    const call = b.run("op", () => answer.promise);
    // The loop runs nothing for 5 timeouts: the clock moves on, the timer can't fire until after.
    stalledMs += 5 * TIMEOUT;
    vi.setSystemTime(Date.now() + 5 * TIMEOUT);
    setTimeout(() => answer.resolve("waiting to be read"), TIMEOUT);
    await vi.advanceTimersByTimeAsync(TIMEOUT);
    await expect(call).resolves.toBe("waiting to be read");
    expect(b.stats).toMatchObject({ timeouts: 0, failures: 0 });
  });

  test("without a stall the same race goes to the timer: the full timeout was waited", async () => {
    const { b } = breaker();
    const answer = deferred<string>();
    const call = b.run("op", () => answer.promise).catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(30);
    setTimeout(() => answer.resolve("too late"), TIMEOUT - 30);
    await vi.advanceTimersByTimeAsync(TIMEOUT - 30);
    expect(await call).toMatchObject({ reason: "timeout" });
  });

  test("a loop stalled all the time still gives up, after TIMEOUT_STRETCH timeouts", async () => {
    const started = Date.now();
    const { b } = breaker({ loopStalledMs: () => Date.now() - started });
    const { call, settled } = hangingCall(b);
    await vi.advanceTimersByTimeAsync(TIMEOUT * TIMEOUT_STRETCH - 1);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(await call).toMatchObject({ reason: "timeout" });
  });

  test("a function that throws before returning a promise is a failure like any other", async () => {
    const { b } = breaker();
    for (let i = 0; i < THRESHOLD; i++) {
      await expect(
        b.run("op", () => {
          throw new Error("no connection object");
        }),
      ).rejects.toThrow("no connection object");
    }
    expect(b.currentState).toBe("open");
    // The afterEach hook checks that no timeout timer was left behind to fire later.
  });

  test("onTransition listeners hear every change until they unsubscribe", async () => {
    const { b } = breaker();
    const heard: Array<[BreakerState, BreakerState]> = [];
    const unsubscribe = b.onTransition((from, to) => heard.push([from, to]));
    await openBreaker(b);
    await vi.advanceTimersByTimeAsync(COOLDOWN);
    unsubscribe();
    await b.run("probe", up);
    expect(heard).toEqual([["closed", "open"]]);
  });
});
