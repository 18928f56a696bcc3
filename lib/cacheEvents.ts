/** What the store did with the cache, kept for the cache lab page and for metrics. */
export type CacheEventKind =
  | "hit"
  | "miss"
  | "bypass"
  | "write-through"
  | "fill"
  | "refused"
  | "stale-epoch"
  | "tombstone"
  | "repair-recorded"
  | "repair"
  | "breaker";

export type CacheEvent = {
  /** The event's number among its owner's events (1, 2, ...), or among the whole cache's. */
  seq: number;
  at: string;
  kind: CacheEventKind;
  /** Whose cache slot it concerns; absent for events of the whole cache (breaker, auth repairs of unknown owner). */
  userId?: string;
  taskId?: number;
  version?: number;
  detail?: string;
};

/** One user's share of the log: what their cache lab shows, and nothing of anybody else's. */
export type UserCacheEvents = {
  /** That user's counters per kind, since this process started (or since it last forgot them). */
  counts: Record<CacheEventKind, number>;
  /** Share of that user's reads served from the cache (null before their first read). */
  hitRatio: number | null;
  /** That user's events, newest first, only those after `afterSeq`; without the owner field. */
  recent(afterSeq?: number): CacheEvent[];
};

/** Users whose events and counters are kept; past this many, the least recently active are forgotten. */
const USERS_MAX = 1_000;
/** Events kept per user (the lab shows 100 at most and polls every second). */
const EVENTS_PER_USER = 50;

type UserLog = { seq: number; counts: Record<CacheEventKind, number>; events: CacheEvent[] };

function zeroCounts(): Record<CacheEventKind, number> {
  return { hit: 0, miss: 0, bypass: 0, "write-through": 0, fill: 0, refused: 0, "stale-epoch": 0, tombstone: 0, "repair-recorded": 0, repair: 0, breaker: 0 };
}

function ratio(counts: Record<CacheEventKind, number>): number | null {
  const reads = counts.hit + counts.miss + counts.bypass;
  return reads === 0 ? null : counts.hit / reads;
}

/**
 * The last events and running counters, per user (bounded: `USERS_MAX` users × `EVENTS_PER_USER`
 * events), plus the process-wide counters that only /api/metrics reports. A user's view never
 * includes another user's events or counts, nor events of the whole cache (those reach only the
 * listeners): a user's sequence numbers count their own events, so they say nothing about anyone
 * else's traffic.
 */
export class CacheEventLog {
  /** Process-wide counters per kind, all users together: for /api/metrics only. */
  readonly counts: Record<CacheEventKind, number> = zeroCounts();
  private readonly users = new Map<string, UserLog>();
  /** Numbers events of the whole cache (no owner): the breaker's transitions, auth repairs of unknown owner. */
  private sharedSeq = 0;
  private readonly listeners = new Set<(e: CacheEvent) => void>();

  record(kind: CacheEventKind, fields: { userId?: string; taskId?: number; version?: number; detail?: string } = {}) {
    this.counts[kind]++;
    const listed = kind !== "hit" && kind !== "miss" && kind !== "bypass";
    let event: CacheEvent | undefined;
    if (fields.userId !== undefined) {
      const log = this.userLog(fields.userId);
      log.counts[kind]++;
      // Reads are counted, not listed: a busy page would push every write out of the buffer.
      if (!listed) return;
      event = { seq: ++log.seq, at: new Date().toISOString(), kind, ...fields };
      log.events.push(event);
      if (log.events.length > EVENTS_PER_USER) log.events.shift();
    } else {
      if (!listed) return;
      event = { seq: ++this.sharedSeq, at: new Date().toISOString(), kind, ...fields };
    }
    for (const l of this.listeners) l(event);
  }

  /** One user's counters and events (empty for a user with none). */
  forUser(userId: string): UserCacheEvents {
    const log = this.users.get(userId);
    const counts = log ? { ...log.counts } : zeroCounts();
    const events = log?.events ?? [];
    return {
      counts,
      hitRatio: ratio(counts),
      recent: (afterSeq = 0) =>
        events
          .filter((e) => e.seq > afterSeq)
          .reverse()
          .map(({ userId: _owner, ...rest }) => rest),
    };
  }

  onEvent(listener: (e: CacheEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Share of reads served from the cache since start, all users together (null before the first read): for metrics. */
  get hitRatio(): number | null {
    return ratio(this.counts);
  }

  private userLog(userId: string): UserLog {
    let log = this.users.get(userId);
    if (log) {
      // Most recently active last, so the first key is the one to forget.
      this.users.delete(userId);
    } else {
      log = { seq: 0, counts: zeroCounts(), events: [] };
      if (this.users.size >= USERS_MAX) this.users.delete(this.users.keys().next().value as string);
    }
    this.users.set(userId, log);
    return log;
  }
}
