import * as queries from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { seededRandom } from "./random";

/**
 * A steady mixed workload (reads, updates, creates, deletes) from several clients over several
 * store instances, for fault tests: it records every operation that failed in a way a user would
 * see (anything but not_found/precondition_failed from racing writers) and every acknowledged write.
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
};

/** Clients are spread over `users` (client n acts for users[n % users.length]), each on its own tasks. */
export async function startWorkload(stores: TaskStore[], { users, clients = 8, seed = 1 }: { users: string[]; clients?: number; seed?: number }): Promise<Workload> {
  const rnd = seededRandom(seed);
  const ids: number[] = [];
  const idsOf = new Map<string, number[]>(users.map((u) => [u, []]));
  const acked = new Map<number, number>();
  const deleted = new Set<number>();
  const failures: string[] = [];
  for (const userId of users) {
    for (let i = 0; i < 12; i++) {
      const t = await (stores[0] as TaskStore).forUser(userId).create({ title: `workload seed ${i}` });
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
      try {
        if (roll < 0.45) await store.get(id).catch(expectNotFound);
        else if (roll < 0.6) await store.list({ limit: 50 });
        else if (roll < 0.85) ack(id, (await store.update({ id, patch: { title: `t${rnd.int(1e6)}` } })).version);
        else if (roll < 0.93) {
          const t = await store.create({ title: `workload ${n}` });
          ids.push(t.id);
          mine.push(t.id);
          ack(t.id, t.version);
        } else if (mine.length > 8) {
          await store.remove({ id });
          deleted.add(id);
        }
      } catch (err) {
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
  };
}

function expectNotFound(err: unknown) {
  if ((err as { code?: string }).code !== "not_found") throw err;
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
      throw new Error(`no convergence after ${limitMs} ms: ${JSON.stringify(audit?.findings ?? "audit failed")}, owed ${owed}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
