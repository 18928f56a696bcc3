import "server-only";

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
  | "breaker"
  | "evict"
  | "flush";

/** What the store says about one event. */
export type CacheEventFields = {
  /** Whose cache slot it concerns; absent for events of the whole cache (breaker, auth repairs of unknown owner). */
  userId?: string;
  taskId?: number;
  version?: number;
  detail?: string;
  /** Set on an event another instance relayed (lib/live/labRelay.ts): that instance's name. */
  instance?: string;
};

/** An event as one user's log keeps it (and the cache lab shows it, without the owner). */
export type CacheEvent = CacheEventFields & {
  /** The event's number among its owner's events (1, 2, ...). */
  seq: number;
  at: string;
  kind: CacheEventKind;
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
/** Events kept per user (the lab shows 100 at most and polls every second); reads are events too. */
const EVENTS_PER_USER = 100;

type UserLog = { seq: number; counts: Record<CacheEventKind, number>; events: CacheEvent[] };

const ZERO_COUNTS: Readonly<Record<CacheEventKind, number>> = zeroCounts();

function zeroCounts(): Record<CacheEventKind, number> {
  return { hit: 0, miss: 0, bypass: 0, "write-through": 0, fill: 0, refused: 0, "stale-epoch": 0, tombstone: 0, "repair-recorded": 0, repair: 0, breaker: 0, evict: 0, flush: 0 };
}

function ratio(counts: Record<CacheEventKind, number>): number | null {
  const reads = counts.hit + counts.miss + counts.bypass;
  return reads === 0 ? null : counts.hit / reads;
}

/**
 * The last events and running counters, per user (bounded: `USERS_MAX` users × `EVENTS_PER_USER`
 * events): what each user's cache lab shows. A user's view never includes another user's events or
 * counts: a user's sequence numbers count their own events, so they say nothing about anyone
 * else's traffic. Events of the whole cache (no owner) are not kept here; the store's observer
 * hears every event (lib/store/observer.ts), and process-wide numbers are in /api/metrics.
 */
export class CacheEventLog {
  private readonly users = new Map<string, UserLog>();

  record(kind: CacheEventKind, fields: CacheEventFields = {}) {
    if (fields.userId === undefined || !Object.hasOwn(ZERO_COUNTS, kind)) return;
    const log = this.userLog(fields.userId);
    log.counts[kind]++;
    // Reads are listed beside writes, so the lab can show miss → fill → hit as it happens.
    log.events.push({ seq: ++log.seq, at: new Date().toISOString(), kind, ...fields });
    if (log.events.length > EVENTS_PER_USER) log.events.shift();
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
