/**
 * Every cache key is built here. All of them share the `{tasks}` hash tag, so scripts touching
 * several keys stay in one Redis Cluster slot; the prefix lets apps and test runs share a Redis.
 */
export type CacheKeys = {
  task(id: number): string;
  /** Complete list index: sorted set of ids (score = id) plus a sentinel member. */
  index: string;
  /** Index being built (sorted set), ids deleted during the build (set), and the build lease. */
  build: string;
  buildRemoved: string;
  buildLease: string;
  /** Random value that lives as long as the cache's contents; see ENSURE_EPOCH. */
  epoch: string;
  /** Every key this app owns matches this pattern (for audits and test clean-up). */
  pattern: string;
};

export function cacheKeys(prefix: string): CacheKeys {
  const base = `${prefix}:{tasks}`;
  return {
    task: (id) => `${base}:task:${id}`,
    index: `${base}:index`,
    build: `${base}:index:build`,
    buildRemoved: `${base}:index:build:removed`,
    buildLease: `${base}:index:lease`,
    epoch: `${base}:epoch`,
    pattern: `${base}:*`,
  };
}

/** Sentinel member marking a list index as complete (score 0; task ids start at 1). */
export const INDEX_SENTINEL = "complete";

/** Entries are `<version>|<task JSON>`; a tombstone is `<version>|` with nothing after the bar. */
export function encodeEntry(version: number, json: string): string {
  return `${version}|${json}`;
}

import type { Task } from "../tasks/schema";
import type { CachedTask } from "./types";

export function decodeEntry(raw: string | null | undefined): CachedTask {
  if (raw === null || raw === undefined) return { state: "miss" };
  const bar = raw.indexOf("|");
  const version = Number(raw.slice(0, bar));
  if (bar < 1 || !Number.isSafeInteger(version)) return { state: "miss" };
  if (bar === raw.length - 1) return { state: "tombstone", version };
  return { state: "hit", task: JSON.parse(raw.slice(bar + 1)) as Task };
}
