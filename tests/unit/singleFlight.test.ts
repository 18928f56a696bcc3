import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { SingleFlight } from "@/lib/singleFlight";
import { deferred } from "../support/gate";

// The store-level guarantee (200 concurrent misses cost one Postgres query per instance) is tested
// on real backends in tests/consistency/singleFlight.test.ts; this is the primitive alone, with
// calls settled by hand or by fake timers, so nothing depends on real time.


beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("SingleFlight", () => {
  test("do() with one key while a call is in flight shares that call: fn runs once, everyone gets its value", async () => {
    const flights = new SingleFlight();
    const call = deferred<number>();
    const fn = vi.fn(() => call.promise);
    const waiting = Array.from({ length: 200 }, () => flights.do("task:1", fn));
    expect(fn).toHaveBeenCalledTimes(1);
    call.resolve(42);
    expect(await Promise.all(waiting)).toEqual(Array.from({ length: 200 }, () => 42));
  });

  test("do() with different keys runs each one's fn", async () => {
    const flights = new SingleFlight();
    const a = vi.fn(() => Promise.resolve("a"));
    const b = vi.fn(() => Promise.resolve("b"));
    await expect(Promise.all([flights.do("a", a), flights.do("b", b), flights.do("a", a)])).resolves.toEqual(["a", "b", "a"]);
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).toHaveBeenCalledTimes(1);
  });

  test("do() after the flight settled starts a new one (results are not cached)", async () => {
    const flights = new SingleFlight();
    let n = 0;
    const fn = vi.fn(() => new Promise<number>((resolve) => setTimeout(() => resolve(++n), 10)));
    const first = flights.do("k", fn);
    await vi.advanceTimersByTimeAsync(10);
    await expect(first).resolves.toBe(1);
    const second = flights.do("k", fn);
    await vi.advanceTimersByTimeAsync(10);
    await expect(second).resolves.toBe(2);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  test("a caller arriving just before the flight settles joins it; one arriving after starts another", async () => {
    const flights = new SingleFlight();
    const fn = vi.fn(() => new Promise<string>((resolve) => setTimeout(() => resolve("slow"), 100)));
    const first = flights.do("k", fn);
    await vi.advanceTimersByTimeAsync(99);
    const joined = flights.do("k", fn);
    expect(fn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    await expect(Promise.all([first, joined])).resolves.toEqual(["slow", "slow"]);
    void flights.do("k", fn);
    expect(fn).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(100);
  });

  test("a rejection reaches every caller of the flight, and the key is free again afterwards", async () => {
    const flights = new SingleFlight();
    const call = deferred<string>();
    const failing = vi.fn(() => call.promise);
    const waiting = Array.from({ length: 3 }, () => flights.do("k", failing).catch((err: unknown) => err));
    const boom = new Error("database unavailable");
    call.reject(boom);
    expect(await Promise.all(waiting)).toEqual([boom, boom, boom]);
    expect(failing).toHaveBeenCalledTimes(1);
    await expect(flights.do("k", () => Promise.resolve("recovered"))).resolves.toBe("recovered");
  });

  test("an fn that throws before returning a promise rejects its callers and leaves the key free", async () => {
    const flights = new SingleFlight();
    const thrown = flights.do("k", () => {
      throw new Error("bad arguments");
    });
    await expect(thrown).rejects.toThrow("bad arguments");
    await expect(flights.do("k", () => Promise.resolve("next"))).resolves.toBe("next");
  });
});
