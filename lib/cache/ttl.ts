export type CacheTtls = {
  /** Lifetime of a task entry and of the list index. */
  ttlSeconds: number;
  /** Lifetime of a tombstone; see docs/decisions/002-cache-consistency-protocol.md for why it suffices. */
  tombstoneTtlSeconds: number;
};

/** ±10 % jitter, so entries filled together don't all expire in the same second. */
export function jitteredTtl(ttlSeconds: number): number {
  if (ttlSeconds < 10) return ttlSeconds;
  return Math.round(ttlSeconds * (0.9 + Math.random() * 0.2));
}
