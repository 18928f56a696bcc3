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
  seq: number;
  at: string;
  kind: CacheEventKind;
  /** Whose cache slot it concerns; absent for events of the whole cache (breaker, auth repairs). */
  userId?: string;
  taskId?: number;
  version?: number;
  detail?: string;
};

/** A ring buffer of the last `capacity` events plus running counters per kind. */
export class CacheEventLog {
  private readonly buffer: CacheEvent[] = [];
  private seq = 0;
  readonly counts: Record<CacheEventKind, number> = {
    hit: 0,
    miss: 0,
    bypass: 0,
    "write-through": 0,
    fill: 0,
    refused: 0,
    "stale-epoch": 0,
    tombstone: 0,
    "repair-recorded": 0,
    repair: 0,
    breaker: 0,
  };
  private readonly listeners = new Set<(e: CacheEvent) => void>();

  constructor(private readonly capacity = 200) {}

  record(kind: CacheEventKind, fields: { userId?: string; taskId?: number; version?: number; detail?: string } = {}) {
    this.counts[kind]++;
    // Reads are counted, not listed: a busy page would push every write out of the buffer.
    if (kind === "hit" || kind === "miss" || kind === "bypass") return;
    const event: CacheEvent = { seq: ++this.seq, at: new Date().toISOString(), kind, ...fields };
    this.buffer.push(event);
    if (this.buffer.length > this.capacity) this.buffer.shift();
    for (const l of this.listeners) l(event);
  }

  /**
   * Newest first; only events after `afterSeq` when given. With `userId`, only that user's events
   * and those of the whole cache (a breaker change), without the owner field.
   */
  recent(afterSeq = 0, userId?: string): CacheEvent[] {
    const mine = this.buffer.filter((e) => e.seq > afterSeq && (userId === undefined || e.userId === undefined || e.userId === userId));
    return mine.reverse().map(({ userId: _owner, ...rest }) => (userId === undefined ? { ...rest, userId: _owner } : rest));
  }

  onEvent(listener: (e: CacheEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Share of reads served from the cache since start (null before the first read). */
  get hitRatio(): number | null {
    const reads = this.counts.hit + this.counts.miss + this.counts.bypass;
    return reads === 0 ? null : this.counts.hit / reads;
  }
}
