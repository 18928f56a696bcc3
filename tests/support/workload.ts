import * as queries from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { checkHistory, History } from "./history";
import { seededRandom } from "./random";

/**
 * A steady mixed workload (reads, updates, creates, deletes) from several clients over several
 * store instances, for fault tests: it records every operation that failed in a way a user would
 * see (anything but not_found/precondition_failed from racing writers), every acknowledged write,
 * and the history of every operation, what each read returned included, for `staleness()`.
 */
export type Workload = {
  /** Stops the clients and resolves when they have finished. */
  stop(): Promise<void>;
  failures: string[];
  operations: () => number;
  ids: number[];
  /** Newest acknowledged version per id, and the ids whose delete was acknowledged. */
  acked: Map<number, number>;
  deleted: Set<number>;
  /** Every operation (the seed tasks' creates too), timed, with what each read returned. */
  history: History;
};

/** Clients are spread over `users` (client n acts for users[n % users.length]), each on its own tasks. */
export async function startWorkload(stores: TaskStore[], { users, clients = 8, seed = 1 }: { users: string[]; clients?: number; seed?: number }): Promise<Workload> {
  const rnd = seededRandom(seed);
  const ids: number[] = [];
  const idsOf = new Map<string, number[]>(users.map((u) => [u, []]));
  const acked = new Map<number, number>();
  const deleted = new Set<number>();
  const failures: string[] = [];
  const history = new History();
  for (const userId of users) {
    for (let i = 0; i < 12; i++) {
      const start = history.now();
      const t = await (stores[0] as TaskStore).forUser(userId).create({ title: `workload seed ${i}` });
      history.created(userId, t, start);
      ids.push(t.id);
      idsOf.get(userId)?.push(t.id);
      acked.set(t.id, t.version);
    }
  }
  let running = true;
  let count = 0;
  const ack = (id: number, version: number) => acked.set(id, Math.max(acked.get(id) ?? 0, version));

  async function client(n: number) {
    const userId = users[n % users.length] as string;
    const store = (stores[n % stores.length] as TaskStore).forUser(userId);
    const mine = idsOf.get(userId) as number[];
    while (running) {
      const id = mine[mine.length - 1 - rnd.int(Math.min(16, mine.length))] as number;
      const roll = rnd.next();
      const start = history.now();
      let deleting = false;
      try {
        if (roll < 0.45) {
          try {
            history.got(userId, id, start, await store.get(id));
          } catch (err) {
            if ((err as { code?: string }).code !== "not_found") throw err;
            history.got(userId, id, start);
          }
        } else if (roll < 0.6) history.listed(userId, start, await store.list({ limit: 50 }));
        else if (roll < 0.85) {
          const t = await store.update({ id, patch: { title: `t${rnd.int(1e6)}` } });
          history.updated(userId, t, start);
          ack(id, t.version);
        } else if (roll < 0.93) {
          const t = await store.create({ title: `workload ${n}` });
          history.created(userId, t, start);
          ids.push(t.id);
          mine.push(t.id);
          ack(t.id, t.version);
        } else if (mine.length > 8) {
          deleting = true;
          await store.remove({ id });
          history.deleted(userId, id, start, true);
          deleted.add(id);
        }
      } catch (err) {
        // A delete that was refused or failed still excuses a read that missed the task meanwhile.
        if (deleting) history.deleted(userId, id, start, false);
        const code = (err as { code?: string }).code;
        if (code !== "not_found" && code !== "precondition_failed") {
          failures.push(`${code ?? ""} ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      count++;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  const done = Promise.all(Array.from({ length: clients }, (_, n) => client(n)));
  return {
    async stop() {
      running = false;
      await done;
    },
    failures,
    operations: () => count,
    ids,
    acked,
    deleted,
    history,
  };
}

/**
 * The workload's reads held to read-your-writes: none older than a write acknowledged before it
 * began, none of a task deleted before it began, none missing a task that existed (see ./history).
 */
export function staleness(w: Workload) {
  return checkHistory(w.history);
}

/** Acknowledged writes that Postgres does not reflect (should be none). */
export async function lostWrites(store: TaskStore, w: Workload): Promise<string[]> {
  const rows = new Map((await queries.getOwnedTasksByIds(store.database.db, { ids: [...w.acked.keys()] })).map((r) => [r.task.id, r.task]));
  const lost: string[] = [];
  for (const [id, version] of w.acked) {
    const row = rows.get(id);
    if (w.deleted.has(id)) {
      if (row) lost.push(`task ${id}: delete acknowledged, still in Postgres`);
    } else if (!row || row.version < version) {
      lost.push(`task ${id}: v${version} acknowledged, Postgres has ${row ? `v${row.version}` : "nothing"}`);
    }
  }
  return lost;
}

/**
 * Waits until the cache agrees with Postgres and no instance owes repairs; returns how long it
 * took from `since`, or throws after `limitMs`.
 */
export async function waitForConvergence(stores: TaskStore[], since: number, limitMs = 10_000): Promise<number> {
  for (;;) {
    const audit = await (stores[0] as TaskStore).audit().catch(() => null);
    // Repairs are left to the stores' own timers: this only watches.
    const durable = await queries.listCacheRepairs((stores[0] as TaskStore).database.db, { limit: 1000 }).catch(() => [1]);
    const owed = [...stores.map((s) => s.pendingRepairCount), durable.length];
    if (audit?.ok && owed.every((n) => n === 0)) return Date.now() - since;
    if (Date.now() - since > limitMs) {
      throw new Error(`no convergence after ${limitMs} ms: ${JSON.stringify(audit?.findings ?? "audit failed")}, owed ${owed.join(",")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
