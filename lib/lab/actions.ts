import "server-only";
import type { Cache } from "../cache";
import type { TaskStore } from "../store/taskStore";
import { isTaskError, TaskError } from "../tasks/errors";
import { listAllIdsWithDeleted, ownsTaskId } from "./queries";

// What the cache lab's buttons do to the signed-in user's own cache slot: evict one task, or flush
// it all. Both only ever make entries read as misses (never put anything in), so neither can make
// the cache lie: the next read fills the entry from Postgres through the ordinary compare-and-set.

function cacheOf(store: TaskStore): Cache {
  if (!store.cache) throw new TaskError("conflict", "This server runs without a cache (CACHE_DRIVER=none): there is nothing to evict or flush.");
  return store.cache;
}

async function cacheCall<T>(cache: Cache, operation: "evictTask" | "flushUser", subject: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await cache.run(operation, fn, subject);
  } catch (err) {
    if (isTaskError(err)) throw err;
    throw new TaskError("service_unavailable", "The cache isn't answering right now. Try again shortly.", { cause: err, retryAfterSeconds: 1 });
  }
}

/**
 * "Evict": the task's live entry becomes a floor at its version (a miss that no older version may
 * fill), so the next read misses, reads Postgres and fills it. `evicted` is false when nothing live
 * was cached (absent, or a tombstone, which stays). 404 for an id the user never had.
 */
export async function evictTask(store: TaskStore, userId: string, id: number): Promise<{ id: number; evicted: boolean }> {
  const cache = cacheOf(store);
  if (!(await store.db(() => ownsTaskId(store.database.db, { userId, id }), { count: false }))) {
    throw new TaskError("not_found", `Task ${id} does not exist.`);
  }
  const slot = cache.driver.forUser(userId);
  const evicted = await cacheCall(cache, "evictTask", `{u:${userId}}:task:${id}`, () => slot.evictTask(id));
  store.recordEvent("evict", { userId, taskId: id, detail: evicted ? "entry dropped; a floor keeps older versions out" : "nothing live was cached" });
  return { id, evicted };
}

/**
 * "Flush my cache": ends the user's epoch (a write prepared before it is refused and repaired),
 * drops their list views, and evicts every id they have in Postgres (deleted ones included) plus
 * `shownIds`, the ids the page shows. Other users' slots are untouched. Returns how many ids were
 * evicted-if-cached.
 */
export async function flushUserCache(store: TaskStore, userId: string, shownIds: number[] = []): Promise<{ ids: number }> {
  const cache = cacheOf(store);
  const known = await store.db(() => listAllIdsWithDeleted(store.database.db, { userId }), { count: false });
  const ids = [...new Set([...known, ...shownIds])];
  const slot = cache.driver.forUser(userId);
  await cacheCall(cache, "flushUser", `{u:${userId}}`, () => slot.flushUser(ids));
  // This instance forgets the epoch it knew, so its next write reads the new one instead of being
  // refused for the old one. (Writes already under way keep the old one and are refused: that is
  // what a flush must do to them.)
  store.noteResults(userId, ["stale-epoch"]);
  store.recordEvent("flush", { userId, detail: `epoch ended; ${ids.length} task entries and the list views dropped` });
  return { ids: ids.length };
}
