/**
 * Every cache key is built here. A user's keys share the hash tag `{u:<userId>}`, so the scripts
 * touching several of them stay in one Redis Cluster slot while different users spread over all
 * slots; the prefix lets apps and test runs share a Redis. better-auth's values (sessions, API
 * keys) live under `<prefix>:auth:` and are only ever touched one key at a time.
 */
/** The user's list views: each status, newest first and by due date. The order the scripts take them in. */
export const VIEW_ORDER = ["all:new", "open:new", "done:new", "all:due", "open:due", "done:due"] as const;
export type ViewName = (typeof VIEW_ORDER)[number];

export type UserCacheKeys = {
  task(id: number): string;
  /** The views' anchor: a hash of id -> version its membership was set from, plus '_' once complete. */
  views: string;
  /** The six view sorted sets, in VIEW_ORDER. */
  viewSets: string[];
  /** Views being built (anchor and sets) and the build lease. */
  build: string;
  buildSets: string[];
  buildLease: string;
  /** Random value that lives as long as the user's cached contents; see ENSURE_EPOCH. */
  epoch: string;
  /** Every task entry of this user matches `${taskPrefix}*`. */
  taskPrefix: string;
  /** A cache-lab scratch value (the race demo's). */
  scratch(name: string): string;
  /** The user's live-updates pub/sub channel (a channel, not a key; in the user's slot for sharded pub/sub). */
  liveChannel: string;
  /** The user's cache-lab relay channel (lib/live/labRelay.ts), beside the live one. */
  labChannel: string;
};

/** User ids are better-auth's random ids; anything that could break out of the hash tag is refused. */
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Scratch names are the lab's own: lower-case letters, digits, ':' and '-'. */
export function assertScratchName(name: string): string {
  if (!/^[a-z0-9:-]{1,64}$/.test(name)) throw new Error("invalid scratch key name");
  return name;
}

export function assertUserId(userId: string): string {
  if (!USER_ID.test(userId)) throw new Error("invalid user id for a cache key");
  return userId;
}

export function userCacheKeys(prefix: string, userId: string): UserCacheKeys {
  const base = `${prefix}:{u:${assertUserId(userId)}}`;
  return {
    task: (id) => `${base}:task:${id}`,
    views: `${base}:views`,
    viewSets: VIEW_ORDER.map((v) => `${base}:views:${v}`),
    build: `${base}:views:build`,
    buildSets: VIEW_ORDER.map((v) => `${base}:views:build:${v}`),
    buildLease: `${base}:views:lease`,
    epoch: `${base}:epoch`,
    taskPrefix: `${base}:task:`,
    scratch: (name) => `${base}:lab:${assertScratchName(name)}`,
    liveChannel: `${base}:live`,
    labChannel: `${base}:lab`,
  };
}

/** Matches every task entry of every user; `parseTaskKey` reads owner and id back. */
export function allTasksPattern(prefix: string): string {
  return `${prefix}:{u:*}:task:*`;
}

/** Matches every user's views anchor; `parseIndexKey` reads the owner back. */
export function allIndexesPattern(prefix: string): string {
  return `${prefix}:{u:*}:views`;
}

export function parseIndexKey(prefix: string, key: string): string | null {
  const head = `${prefix}:{u:`;
  const tail = "}:views";
  if (!key.startsWith(head) || !key.endsWith(tail) || key.length <= head.length + tail.length) return null;
  const userId = key.slice(head.length, key.length - tail.length);
  return /^[A-Za-z0-9_-]{1,64}$/.test(userId) ? userId : null;
}

/** The owner and kind of a user's pub/sub channel (`liveChannel` or `labChannel`), or null. */
export function parseUserChannel(prefix: string, channel: string): { userId: string; kind: "live" | "lab" } | null {
  const head = `${prefix}:{u:`;
  if (!channel.startsWith(head)) return null;
  const match = /^([A-Za-z0-9_-]{1,64})\}:(live|lab)$/.exec(channel.slice(head.length));
  return match ? { userId: match[1]!, kind: match[2] as "live" | "lab" } : null;
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

/** Entries are `<version>|<task JSON>`; a tombstone is `<version>|` with nothing after the bar; a floor (what an eviction leaves) is `<version>^`. */
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
  const task = JSON.parse(raw.slice(bar + 1)) as Task;
  // Entries cached before due dates existed have no dueOn: they had none.
  if (task.dueOn === undefined) task.dueOn = null;
  return { state: "hit", task };
}

/** The version a floor (`<version>^`, an evicted entry) holds back, or null when `raw` is no floor. */
export function floorOf(raw: string | null | undefined): number | null {
  const m = raw ? /^(\d+)\^$/.exec(raw) : null;
  return m ? Number(m[1]) : null;
}
