import "server-only";
import { randomBytes } from "node:crypto";
import type { CacheEventFields, CacheEventKind } from "../cacheEvents";
import type { LabChannels } from "./bus";

/** One cache event as it travels between instances (the owner is the channel's). */
export type RelayedEvent = { kind: CacheEventKind; taskId?: number; version?: number; detail?: string };

type Envelope = { from: string; events: RelayedEvent[] };
type Announcement = { from: string; userId: string; untilMs: number };

/** A lab keeps watching this long after its last poll (it polls every second). */
const WATCH_MS = 15_000;
/** An instance says it is watching at most this often per user (others keep the watch WATCH_MS). */
const ANNOUNCE_EVERY_MS = 5_000;
/** Events of a watched user are sent in batches, this often. */
const FLUSH_MS = 100;
/** Per user per batch at most (a flood is the lab's to summarise, not the bus's to carry). */
const BATCH_MAX = 200;
const WATCHED_USERS_MAX = 10_000;

/**
 * Makes a user's cache lab show every instance's events, not only the instance that serves it.
 * The instance serving a lab poll watches that user: it subscribes to the user's lab channel and
 * announces the watch to every instance. An instance that knows a user is watched sends that
 * user's cache events (batched) on the channel; the watcher records them in its own log, marked
 * with the sender. Nobody watching: nothing is published, so the relay costs nothing at all
 * outside the lab. Best effort like every pub/sub message: a lost batch is a gap in the feed.
 */
export class LabRelay {
  /** This instance's name in the feed (random per process). */
  readonly instance = randomBytes(3).toString("hex");
  /** Users someone watches, on any instance: until when. */
  private readonly watched = new Map<string, number>();
  /** Users whose lab this instance serves: its subscription, and until when it keeps it. */
  private readonly serving = new Map<string, { untilMs: number; end?: () => void }>();
  private readonly announcedAt = new Map<string, number>();
  private readonly outbox = new Map<string, RelayedEvent[]>();
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private started: Promise<void> | undefined;

  constructor(
    private readonly channels: LabChannels,
    /** Records a relayed event in this instance's log. */
    private readonly sink: (kind: CacheEventKind, fields: CacheEventFields) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts hearing announcements (at once: an instance that never serves a lab must still send). */
  start(): Promise<void> {
    this.started ??= this.channels
      .onAnnouncement((message) => {
        let a: Announcement;
        try {
          a = JSON.parse(message) as Announcement;
        } catch {
          return;
        }
        if (typeof a.userId !== "string" || typeof a.untilMs !== "number") return;
        if (this.watched.size >= WATCHED_USERS_MAX) this.forgetExpired();
        this.watched.set(a.userId, Math.max(this.watched.get(a.userId) ?? 0, a.untilMs));
      })
      .catch(() => {
        this.started = undefined; // the next lab poll tries again
      });
    return this.started;
  }

  /** A lab poll for `userId` reached this instance: serve it every instance's events for a while. */
  async watch(userId: string): Promise<void> {
    void this.start();
    const now = this.now();
    const untilMs = now + WATCH_MS;
    this.watched.set(userId, untilMs);
    const current = this.serving.get(userId);
    if (current) {
      current.untilMs = untilMs;
    } else {
      const entry: { untilMs: number; end?: () => void } = { untilMs };
      this.serving.set(userId, entry);
      try {
        entry.end = await this.channels.subscribe(userId, (message) => this.receive(userId, message));
      } catch {
        this.serving.delete(userId);
        return;
      }
    }
    if (now - (this.announcedAt.get(userId) ?? 0) >= ANNOUNCE_EVERY_MS) {
      this.announcedAt.set(userId, now);
      await this.channels.announce(JSON.stringify({ from: this.instance, userId, untilMs } satisfies Announcement));
    }
    this.forgetExpired();
  }

  /** A cache event of this instance: sent on if someone (anywhere) watches its owner's lab. */
  note(kind: CacheEventKind, fields: CacheEventFields): void {
    const userId = fields.userId;
    if (userId === undefined || (this.watched.get(userId) ?? 0) < this.now()) return;
    let queue = this.outbox.get(userId);
    if (!queue) this.outbox.set(userId, (queue = []));
    if (queue.length >= BATCH_MAX) return;
    queue.push({ kind, taskId: fields.taskId, version: fields.version, detail: fields.detail });
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  close(): void {
    clearTimeout(this.flushTimer);
    for (const entry of this.serving.values()) entry.end?.();
    this.serving.clear();
  }

  private flush(): void {
    this.flushTimer = undefined;
    for (const [userId, events] of this.outbox) {
      void this.channels.publish(userId, JSON.stringify({ from: this.instance, events } satisfies Envelope));
    }
    this.outbox.clear();
  }

  private receive(userId: string, message: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message) as Envelope;
    } catch {
      return;
    }
    // This instance's own events are in its log already.
    if (envelope.from === this.instance || !Array.isArray(envelope.events)) return;
    for (const e of envelope.events.slice(0, BATCH_MAX)) {
      this.sink(e.kind, { userId, taskId: e.taskId, version: e.version, detail: e.detail, instance: envelope.from });
    }
  }

  private forgetExpired(): void {
    const now = this.now();
    for (const [userId, until] of this.watched) if (until < now) this.watched.delete(userId);
    for (const [userId, entry] of this.serving) {
      if (entry.untilMs < now) {
        entry.end?.();
        this.serving.delete(userId);
        this.announcedAt.delete(userId);
      }
    }
  }
}
