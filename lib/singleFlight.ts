import "server-only";

/**
 * Concurrent callers with the same key share one in-flight promise, so 200 simultaneous misses on
 * one key cost one database read in this process. Nothing is remembered once the flight settles.
 */
export class SingleFlight {
  private readonly inFlight = new Map<string, Promise<unknown>>();

  do<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.inFlight.get(key);
    if (existing) return existing as Promise<T>;
    // Called from an async function, so an fn that throws before returning a promise rejects its callers like any other failure.
    const started = (async () => fn())();
    const promise = started.finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }
}
