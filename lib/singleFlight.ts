/**
 * Concurrent callers with the same key share one in-flight promise, so 200 simultaneous misses on
 * one key cost one database read in this process. Nothing is remembered once the flight settles.
 */
export class SingleFlight {
  private readonly inFlight = new Map<string, Promise<unknown>>();

  do<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.inFlight.get(key);
    if (existing) return existing as Promise<T>;
    let started: Promise<T>;
    try {
      started = fn();
    } catch (err) {
      // Thrown before it returned a promise: the caller gets a rejection, as from an async fn.
      return Promise.reject(err);
    }
    const promise = started.finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }
}
