/**
 * A gate a store hook can wait at: the test learns when the store has reached it, does something
 * in the meantime, then opens it. Makes an interleaving happen every time instead of by luck.
 */
export function gate() {
  let open!: () => void;
  let reached!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const arrived = new Promise<void>((r) => (reached = r));
  let armed = true;
  return {
    /** Use as the hook: pauses the first caller only, so later calls pass straight through. */
    async wait() {
      if (!armed) return;
      armed = false;
      reached();
      await opened;
    },
    reached: () => arrived,
    open: () => open(),
  };
}

/** A promise settled later, by hand: a call in flight whose answer the test decides. */
export function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
