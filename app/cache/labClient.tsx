// Shared types, fetch helpers and formatters for the cache lab page (client side only).
import type { CacheEvent, CacheEventKind } from "@/lib/cacheEvents";
import type { BreakerState, CacheDriverChoice } from "@/lib/names";
import type { RaceDemoResult, RaceRound } from "@/lib/lab/race";
import type { CacheAuditReport, CacheOutcome, TaskCacheView } from "@/lib/taskStore";
import type { Task } from "@/lib/tasks/schema";

export type { CacheAuditReport, CacheEvent, CacheEventKind, CacheOutcome, RaceDemoResult, RaceRound, Task, TaskCacheView };

/** GET /api/cache/state */
export type CacheState = {
  driver: CacheDriverChoice;
  /** This server instance's name in the events (others' events carry theirs); null with one instance. */
  instance: string | null;
  breaker: BreakerState | null;
  hitRatio: number | null;
  counts: Record<CacheEventKind, number>;
  pendingRepairs: number;
  tasks: TaskCacheView[];
  events: CacheEvent[];
};

/** Events the page keeps on screen. */
export const MAX_EVENTS = 100;
/** The state endpoint accepts up to 200 ids. */
export const MAX_WATCHED_IDS = 200;
/** First page of /api/tasks shown on the lab. */
export const LIST_LIMIT = 50;

/** An error whose message is fit to show (the API's public message, or a network hint). */
export class LabError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "LabError";
  }
}

/** fetch + JSON with the API's `{ error: { message } }` turned into a LabError. Aborts pass through. */
export async function requestJson<T>(url: string, init?: RequestInit): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { cache: "no-store", ...init });
  } catch (err) {
    if (init?.signal?.aborted) throw err;
    throw new LabError("Couldn't reach the server. Check your connection.");
  }
  if (response.status === 204) return undefined as T;
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
    throw new LabError(typeof message === "string" ? message : `The server answered ${response.status}.`, response.status);
  }
  return body as T;
}

export function sendJson<T>(url: string, method: "POST" | "PATCH" | "DELETE", data?: unknown): Promise<T> {
  return requestJson<T>(url, {
    method,
    headers: data === undefined ? undefined : { "Content-Type": "application/json" },
    body: data === undefined ? undefined : JSON.stringify(data),
  });
}

/**
 * Every kind of event, in the order the legend and the counters show them: reads first (hit, miss,
 * and the fill a miss makes; bypass), then writes, then faults and their repair.
 */
export const EVENT_KINDS: CacheEventKind[] = [
  "hit",
  "miss",
  "fill",
  "bypass",
  "write-through",
  "refused",
  "stale-epoch",
  "tombstone",
  "repair-recorded",
  "repair",
  "breaker",
  "evict",
  "flush",
];

/** Every event the server lists takes the user's next sequence number, so their count = the last seq. */
export function listedEventCount(counts: Record<CacheEventKind, number>): number {
  return EVENT_KINDS.reduce((sum, kind) => sum + (counts[kind] ?? 0), 0);
}

/** GET /api/tasks/{id} as the lab's "Read" button makes it: the task and how the cache served it (X-Cache). */
export async function readTask(id: number): Promise<{ task: Task; cache: CacheOutcome | null }> {
  let response: Response;
  try {
    response = await fetch(`/api/tasks/${id}`, { cache: "no-store" });
  } catch {
    throw new LabError("Couldn't reach the server. Check your connection.");
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
    throw new LabError(typeof message === "string" ? message : `The server answered ${response.status}.`, response.status);
  }
  const header = response.headers.get("x-cache");
  const cache = header === "HIT" || header === "MISS" || header === "BYPASS" ? header : null;
  return { task: body as Task, cache };
}

/** "14:03:09" in the viewer's time zone, 24-hour. */
export function clockTime(date: Date): string {
  return date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

/** 3540 → "59 min", 42 → "42 s", 3900 → "1 h 5 min". */
export function formatTtl(seconds: number | null): string {
  if (seconds === null) return "—";
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `${hours} h` : `${hours} h ${rest} min`;
}

const percent = new Intl.NumberFormat("en-GB", { style: "percent", maximumFractionDigits: 1 });

export function formatRatio(ratio: number | null): string {
  return ratio === null ? "—" : percent.format(ratio);
}

/** What the store's event details mean, where they are not already words. */
const OPERATION_LABELS: Record<string, string> = {
  get: "read of one task",
  "get: not found": "read of one task: not found",
  "miss-fill": "filled on a miss",
  "miss-fill refused": "fill refused: the cache already had a newer version",
  replay: "a retry's stored answer, written through again",
};

/** An event's detail in words (the store says which write a write-through was: create, update, restore, delete, or a batch's). */
export function describeEvent(event: Pick<CacheEvent, "kind" | "detail" | "version">): string {
  const detail = event.detail;
  if (!detail) return "";
  return OPERATION_LABELS[detail] ?? detail;
}
