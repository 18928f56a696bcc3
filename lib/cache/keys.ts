/**
 * Every cache key is built here. A user's keys share the hash tag `{u:<userId>}`, so the scripts
 * touching several of them stay in one Redis Cluster slot while different users spread over all
 * slots; the prefix lets apps and test runs share a Redis. better-auth's values (sessions, API
 * keys) live under `<prefix>:auth:` and are only ever touched one key at a time.
 */
export type UserCacheKeys = {
  task(id: number): string;
  /** Complete list index: sorted set of ids (score = id) plus a sentinel member. */
  index: string;
  /** Index being built (sorted set), ids deleted during the build (set), and the build lease. */
  build: string;
  buildRemoved: string;
  buildLease: string;
  /** Random value that lives as long as the user's cached contents; see ENSURE_EPOCH. */
  epoch: string;
  /** Every task entry of this user matches `${taskPrefix}*`. */
  taskPrefix: string;
};

/** User ids are better-auth's random ids; anything that could break out of the hash tag is refused. */
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function assertUserId(userId: string): string {
  if (!USER_ID.test(userId)) throw new Error("invalid user id for a cache key");
  return userId;
}

export function userCacheKeys(prefix: string, userId: string): UserCacheKeys {
  const base = `${prefix}:{u:${assertUserId(userId)}}`;
  return {
    task: (id) => `${base}:task:${id}`,
    index: `${base}:index`,
    build: `${base}:index:build`,
    buildRemoved: `${base}:index:build:removed`,
    buildLease: `${base}:index:lease`,
    epoch: `${base}:epoch`,
    taskPrefix: `${base}:task:`,
  };
}

/** Matches every task entry of every user; `parseTaskKey` reads owner and id back. */
export function allTasksPattern(prefix: string): string {
  return `${prefix}:{u:*}:task:*`;
}

/** Matches every user's complete list index; `parseIndexKey` reads the owner back. */
export function allIndexesPattern(prefix: string): string {
  return `${prefix}:{u:*}:index`;
}

export function parseIndexKey(prefix: string, key: string): string | null {
  const head = `${prefix}:{u:`;
  const tail = "}:index";
  if (!key.startsWith(head) || !key.endsWith(tail) || key.length <= head.length + tail.length) return null;
  const userId = key.slice(head.length, key.length - tail.length);
  return /^[A-Za-z0-9_-]{1,64}$/.test(userId) ? userId : null;
}

export function parseTaskKey(prefix: string, key: string): { userId: string; id: number } | null {
  const head = `${prefix}:{u:`;
  if (!key.startsWith(head)) return null;
  const close = key.indexOf("}:task:", head.length);
  if (close < 0) return null;
  const id = Number(key.slice(close + "}:task:".length));
  return Number.isSafeInteger(id) && id > 0 ? { userId: key.slice(head.length, close), id } : null;
}

/** better-auth's secondary-storage key, namespaced under the prefix. */
export function authKey(prefix: string, key: string): string {
  return `${prefix}:auth:${key}`;
}

/** Every key this app owns under `prefix` (test clean-up and flush). */
export function everythingPattern(prefix: string): string {
  return `${prefix}:*`;
}

/** Sentinel member marking a list index as complete (score 0; task ids start at 1). */
export const INDEX_SENTINEL = "complete";

/** Entries are `<version>|<task JSON>`; a tombstone is `<version>|` with nothing after the bar. */
export function encodeEntry(version: number, json: string): string {
  return `${version}|${json}`;
}

import "server-only";
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
