import "server-only";

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

/**
 * Lifetime of a negative entry (an id read from Postgres and found missing): short, since it only
 * saves repeated misses; correctness never depends on it expiring (a create or restore outranks it).
 */
export function missingTtlSeconds(ttls: CacheTtls): number {
  return Math.min(ttls.ttlSeconds, 60);
}
