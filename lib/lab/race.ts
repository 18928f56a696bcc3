import "server-only";
import type { Cache } from "../cache";
import type { UserTaskCache } from "../cache/types";
import type { TaskStore } from "../store/taskStore";
import { isTaskError, TaskError } from "../tasks/errors";
import { deleteScratchTask, getScratchTask, insertScratchTask, renameScratchTask, type ScratchRow } from "./queries";

// The race demo: the reference design's defect, run live. Concurrent renames of one task, each
// "Postgres, then the cache" with a small random pause between the two (the scheduling a real
// server sees: a GC pause, a busy event loop, a slow network hop), through two cache-write paths:
//
//   naive: SET the cache to the row the UPDATE returned. Whichever SET lands last wins, and that
//          need not be the last commit, so the cache can keep an older version for good.
//   ours:  the compare-and-set the task entries use (lib/cache/scripts.ts), on the version the
//          UPDATE returned: the highest version wins whatever order the writes land in.
//
// Each path renames a scratch task of its own (so both start at version 1 and end each round at the
// same version): a row of `tasks` owned by the user but deleted from the start, so no read of the
// app (lists, counts, gets, audits) ever shows it. Both are hard-deleted at the end, also when the
// demo fails, and their scratch cache keys are made to expire at once.

export type RaceOptions = {
  /** Concurrent renames per round. */
  writers?: number;
  rounds?: number;
  /** Each rename waits 0..maxDelayMs (uniform) between its Postgres write and its cache write. */
  maxDelayMs?: number;
  /** A number in [0, 1) (tests may fix it). */
  random?: () => number;
  /** The demo gives up (503) once it has run this long. */
  deadlineMs?: number;
};

export const RACE_DEFAULTS = { writers: 16, rounds: 10, maxDelayMs: 8, deadlineMs: 30_000 } as const;

/** Upper bounds a caller may ask for (the route uses the defaults). */
export const RACE_LIMITS = { writers: 64, rounds: 50, maxDelayMs: 50 } as const;

/** What a round ended with: the row in Postgres and what the path's cache key holds. */
export type RaceRound = {
  round: number;
  postgres: { version: number; title: string };
  /** Null when the key holds nothing (or something unreadable). */
  cache: { version: number; title: string } | null;
  /** cache = Postgres (same version and title). */
  match: boolean;
};

export type RacePathResult = {
  /** Rounds that ended with the cache ≠ Postgres. */
  mismatchedRounds: number;
  /** Cache writes the path refused (the compare-and-set saw a newer version); always 0 for naive. */
  refusedWrites: number;
  rounds: RaceRound[];
};

export type RaceDemoResult = {
  writers: number;
  rounds: number;
  maxDelayMs: number;
  naive: RacePathResult;
  ours: RacePathResult;
  /** The scratch tasks' ids, naive's then ours (gone from Postgres when the result is returned). */
  scratchTaskIds: number[];
  durationMs: number;
};

/** How long the scratch keys may live if the demo dies before it expires them. */
const SCRATCH_TTL_SECONDS = 120;

type Path = "naive" | "ours";

/** A cache value the demo wrote: `{ version, title }` as JSON; the real path's comes as `<version>|<json>`. */
function decodeScratch(raw: string | null): { version: number; title: string } | null {
  if (raw === null) return null;
  const json = /^\d+\|/.test(raw) ? raw.slice(raw.indexOf("|") + 1) : raw;
  try {
    const value = JSON.parse(json) as { version?: unknown; title?: unknown };
    return typeof value.version === "number" && typeof value.title === "string" ? { version: value.version, title: value.title } : null;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function unavailable(cause: unknown): TaskError {
  if (isTaskError(cause)) return cause;
  return new TaskError("service_unavailable", "The cache isn't answering, so the race demo can't run. Try again shortly.", { cause, retryAfterSeconds: 1 });
}

/**
 * Runs the demo for `userId` and returns both paths' rounds. Throws a TaskError: 409 without a cache
 * (nothing to race), 503 when the cache or Postgres fails (the scratch task is removed either way).
 */
export async function runRaceDemo(store: TaskStore, userId: string, options: RaceOptions = {}): Promise<RaceDemoResult> {
  const writers = Math.min(options.writers ?? RACE_DEFAULTS.writers, RACE_LIMITS.writers);
  const rounds = Math.min(options.rounds ?? RACE_DEFAULTS.rounds, RACE_LIMITS.rounds);
  const maxDelayMs = Math.min(options.maxDelayMs ?? RACE_DEFAULTS.maxDelayMs, RACE_LIMITS.maxDelayMs);
  const deadlineMs = options.deadlineMs ?? RACE_DEFAULTS.deadlineMs;
  const random = options.random ?? Math.random;
  const cache = store.cache;
  if (!cache) throw new TaskError("conflict", "This server runs without a cache (CACHE_DRIVER=none), so there is nothing to race.");
  const slot = cache.driver.forUser(userId);
  const db = store.database.db;
  const started = performance.now();

  const scratch = {} as Record<Path, ScratchRow>;
  try {
    for (const path of ["naive", "ours"] as const) {
      scratch[path] = await store.db(() => insertScratchTask(db, { userId, title: `Cache lab race demo, ${path} path (scratch)` }));
    }
  } catch (err) {
    if (scratch.naive) await removeScratch(store, cache, slot, userId, [scratch.naive.id], []);
    throw err;
  }
  const ids = [scratch.naive.id, scratch.ours.id];
  const keyOf: Record<Path, string> = { naive: `race-${scratch.naive.id}-naive`, ours: `race-${scratch.ours.id}-ours` };
  const results: Record<Path, RacePathResult> = {
    naive: { mismatchedRounds: 0, refusedWrites: 0, rounds: [] },
    ours: { mismatchedRounds: 0, refusedWrites: 0, rounds: [] },
  };
  const scratchCall = <T>(fn: (s: UserTaskCache) => Promise<T>): Promise<T> => cacheCall(cache, `{u:${userId}}:lab`, () => fn(slot));

  const runRound = async (path: Path, round: number, delays: number[]): Promise<void> => {
    // allSettled: every rename has finished (none still writing) before a failure ends the demo.
    const renames = await Promise.allSettled(
      delays.map(async (delay, writer) => {
        const title = `Race demo round ${round + 1}, rename ${writer + 1}`;
        // 1. Postgres: the rename commits and returns the version it committed.
        const row: ScratchRow | undefined = await store.db(() => renameScratchTask(db, { userId, id: scratch[path].id, title }));
        if (!row) throw new TaskError("conflict", "The race demo's scratch task changed under it (was it restored?). Run the demo again.");
        // 2. The pause a real server sees between the commit and the cache write.
        await sleep(delay);
        // 3. The cache write.
        const value = JSON.stringify({ version: row.version, title: row.title });
        if (path === "naive") {
          await scratchCall((s) => s.setScratch(keyOf.naive, value, SCRATCH_TTL_SECONDS));
        } else {
          const result = await scratchCall((s) => s.casScratch(keyOf.ours, row.version, value, SCRATCH_TTL_SECONDS));
          if (result === "refused") results.ours.refusedWrites++;
        }
      }),
    );
    const failed = renames.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    // Every rename of the round has written both Postgres and the cache: compare them.
    const [now, raw] = await Promise.all([store.db(() => getScratchTask(db, { userId, id: scratch[path].id })), scratchCall((s) => s.getScratch(keyOf[path]))]);
    if (!now) throw new TaskError("conflict", "The race demo's scratch task disappeared. Run the demo again.");
    const cached = decodeScratch(raw);
    const match = cached !== null && cached.version === now.version && cached.title === now.title;
    const outcome = results[path];
    if (!match) outcome.mismatchedRounds++;
    outcome.rounds.push({ round: round + 1, postgres: { version: now.version, title: now.title }, cache: cached, match });
  };

  try {
    for (let round = 0; round < rounds; round++) {
      if (performance.now() - started > deadlineMs) {
        throw new TaskError("service_unavailable", "The race demo took too long (Postgres or the cache is slow). Try again shortly.", { retryAfterSeconds: 5 });
      }
      // The same pauses for both paths: the only difference between them is the cache write.
      const delays = Array.from({ length: writers }, () => Math.floor(random() * (maxDelayMs + 1)));
      await runRound("naive", round, delays);
      await runRound("ours", round, delays);
    }
  } finally {
    await removeScratch(store, cache, slot, userId, ids, Object.values(keyOf));
  }
  return { writers, rounds, maxDelayMs, naive: results.naive, ours: results.ours, scratchTaskIds: ids, durationMs: Math.round(performance.now() - started) };
}

/** One cache call under the timeout and breaker; a failure is a 503. */
async function cacheCall<T>(cache: Cache, subject: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await cache.run("scratch", fn, subject);
  } catch (err) {
    throw unavailable(err);
  }
}

/**
 * Hard-deletes the scratch rows and makes their keys expire at once (overwritten with a 1 s TTL:
 * the cache has no delete for scratch keys). Best effort: a row left behind is deleted already
 * (invisible) and purged with the other deleted rows after 30 days; a key expires on its own. A row
 * somebody restored meanwhile may have reached the user's cache: its id is owed a repair, which
 * tombstones it (the row is gone) and rebuilds the views.
 */
async function removeScratch(store: TaskStore, cache: Cache, slot: UserTaskCache, userId: string, ids: number[], keys: string[]): Promise<void> {
  for (const id of ids) {
    try {
      const { wasLive } = await store.db(() => deleteScratchTask(store.database.db, { userId, id }));
      if (wasLive) await store.ledger.recordTask(userId, id, true, "the race demo's scratch task was restored, then removed");
    } catch {
      // Postgres failed: the row stays deleted (invisible) until the 30-day purge.
    }
  }
  await Promise.allSettled(keys.map((key) => cache.run("scratch", () => slot.setScratch(key, "", 1), `{u:${userId}}:lab`)));
}
