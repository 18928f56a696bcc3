import "server-only";
import type { LiveChange } from "./change";

export type { LiveChange };

/**
 * Live updates: after a write commits (and its write-through is done), the store publishes what
 * changed on the owner's channel; every instance relays its subscribers' channels to their open
 * event streams (GET /api/tasks/events). On Redis the channel is one user's (`{u:<id>}`, so on a
 * cluster it is that user's slot and sharded pub/sub keeps it on one master); in process, an
 * emitter. A message is a hint that carries the new state: a subscriber applies it by version
 * (never backwards) and rereads after any gap, so a lost message (pub/sub is at-most-once) costs
 * freshness, never correctness. See docs/decisions/015-live-updates.md.
 */


export type LiveListener = {
  /** One write's changes, in the order they were made. */
  onChanges(changes: LiveChange[]): void;
  /** Messages may have been missed (the bus reconnected): the reader should reread. */
  onGap(): void;
};

export type LiveBusKind = "memory" | "redis" | "redis-cluster";

/**
 * The cache lab's relay (lib/live/labRelay.ts): raw messages on a user's lab channel, and
 * announcements (who is watching whose lab) heard by every instance. Only buses that span
 * instances have one.
 */
export interface LabChannels {
  publish(userId: string, message: string): Promise<void>;
  subscribe(userId: string, onMessage: (message: string) => void): Promise<() => void>;
  announce(message: string): Promise<void>;
  /** Every announcement from now on, from any instance (this one's included). */
  onAnnouncement(onMessage: (message: string) => void): Promise<void>;
}

export interface LiveBus {
  readonly kind: LiveBusKind;
  readonly lab?: LabChannels;
  /** Publishes one write's changes (one message, however many tasks): best effort, never throws. */
  publish(userId: string, changes: LiveChange[]): Promise<void>;
  /**
   * Calls `listener` with every message published for `userId` from now on, on any instance.
   * Resolves once the subscription is in place (a message published after that is delivered);
   * the returned function ends it.
   */
  subscribe(userId: string, listener: LiveListener): Promise<() => void>;
  close(): Promise<void>;
}

/**
 * Fan-out inside one process: one upstream subscription per user however many streams that user
 * has open here, shared by every bus below.
 */
export class LocalFanout {
  private readonly listeners = new Map<string, Set<LiveListener>>();

  /** Adds a listener; `first` is true when it is the user's first here (subscribe upstream). */
  add(userId: string, listener: LiveListener): { first: boolean } {
    let set = this.listeners.get(userId);
    const first = !set;
    if (!set) this.listeners.set(userId, (set = new Set()));
    set.add(listener);
    return { first };
  }

  /** Removes a listener; `last` is true when the user has no listener left here (unsubscribe upstream). */
  remove(userId: string, listener: LiveListener): { last: boolean } {
    const set = this.listeners.get(userId);
    if (!set || !set.delete(listener)) return { last: false };
    if (set.size > 0) return { last: false };
    this.listeners.delete(userId);
    return { last: true };
  }

  deliver(userId: string, changes: LiveChange[]): void {
    for (const listener of this.listeners.get(userId) ?? []) {
      try {
        listener.onChanges(changes);
      } catch {
        // One stream's failure is its own.
      }
    }
  }

  /** Tells every listener here that messages may have been missed. */
  gap(): void {
    for (const set of this.listeners.values()) {
      for (const listener of set) {
        try {
          listener.onGap();
        } catch {
          // as above
        }
      }
    }
  }

  get users(): number {
    return this.listeners.size;
  }

  get streams(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}

/** The in-process bus, for the memory cache driver (one instance: its emitter is the whole bus). */
export function createMemoryBus(): LiveBus {
  const fanout = new LocalFanout();
  return {
    kind: "memory",
    async publish(userId, changes) {
      if (changes.length === 0) return;
      // Delivered on a later tick, as a network bus would: a publisher never runs its subscribers' code.
      queueMicrotask(() => fanout.deliver(userId, changes));
    },
    async subscribe(userId, listener) {
      fanout.add(userId, listener);
      return () => void fanout.remove(userId, listener);
    },
    async close() {},
  };
}
