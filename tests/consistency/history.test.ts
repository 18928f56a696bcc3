import { afterAll, beforeAll, describe, expect } from "vitest";
import * as queries from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, testWhere, type TestEnv } from "../support/backends";
import { redisServerAvailable, startRedisCluster, type PrivateCluster } from "../support/redisCluster";
import { checkHistory, History } from "../support/history";
import { seededRandom, seedFromEnv } from "../support/random";

/**
 * History checker: many concurrent clients on two store instances (own Postgres pools and cache
 * connections, as two app servers) run random operations, each client for one of several users on
 * that user's small hot set. Every operation's start, end, outcome and version is recorded (the
 * seed tasks' creates too), then the history is checked (tests/support/history.ts):
 *  - no read returns a version older than the newest version acknowledged before the read began;
 *  - no read returns a task whose delete was acknowledged before the read began;
 *  - no read misses a task created before it began and not being deleted while it ran;
 *  - no list shows another user's task, and every get, update and delete of another user's task
 *    id is not_found (as a missing id) and changes nothing;
 *  - the cache was really used: most reads were HITs;
 *  - after quiescence, the cache equals Postgres (audit, and a read through each instance), and
 *    every task's version is 1 + its owner's acknowledged updates.
 * The list index is evicted now and then, so cold index builds race the writes too.
 * Replay a failure with HISTORY_SEED=<seed printed below>.
 */
const USERS = 8;
const CLIENTS = 32;
const OPERATIONS = 5_000;
const HOT_SET = 24;
const MAX_LIVE = 40;
/**
 * Of the gets and lists that answered, at least this share must be cache HITs (measured: about
 * 0.8; an open breaker or a cache that never fills makes it 0).
 */
const MIN_HIT_RATIO = 0.5;
/** What another user's update tries to write: no task may ever carry it. */
const FOREIGN_TITLE = "written by another user";

type Peek = "get" | "update" | "remove";

const redisBackend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!redisBackend) throw new Error("no postgres + redis backend");

/**
 * The stacks the history runs on: one Redis, and a real Redis Cluster (3 masters + 3 replicas of
 * private redis-server processes), where each user's keys live in their own slot of some master.
 */
const STACKS: Array<{ name: string; applies: boolean; cluster: boolean }> = [
  { name: "postgres + redis", applies: true, cluster: false },
  { name: "postgres + a Redis Cluster", applies: redisServerAvailable(), cluster: true },
];

for (const stack of STACKS) describe(`history of concurrent operations on two instances (${stack.name})`, () => {
  let env: TestEnv;
  let stores: TaskStore[];
  let cluster: PrivateCluster | undefined;

  beforeAll(async () => {
    if (!stack.applies) return;
    env = await createTestEnv(redisBackend);
    if (stack.cluster) {
      cluster = await startRedisCluster();
      const redisClusterNodes = cluster.seeds.split(",").map((s) => ({ host: s.split(":")[0]!, port: Number(s.split(":")[1]) }));
      stores = [await env.openStore({ cache: { redisClusterNodes } }), await env.openStore({ cache: { redisClusterNodes } })];
    } else {
      stores = [await env.openStore(), await env.openStore()];
    }
  }, 60_000);
  afterAll(async () => {
    await env?.cleanup();
    await cluster?.stop();
  });

  testWhere(stack.applies)(`${USERS} users × ${CLIENTS / USERS} clients, ${OPERATIONS} random operations: no stale read, no read of a deleted or another user's task, no drift`, async () => {
    const seed = seedFromEnv("HISTORY_SEED");
    const rnd = seededRandom(seed);
    console.log(`history seed: ${seed} (replay with HISTORY_SEED=${seed})`);

    const users = await Promise.all(Array.from({ length: USERS }, (_, u) => env.createUser(`user${u}`)));
    const history = new History();
    // Per user: the ids created (newest last) and those not deleted.
    const ids: number[][] = users.map(() => []);
    const live: Array<Set<number>> = users.map(() => new Set());
    /** Tasks this history deleted, per user: what a restore picks from. */
    const deleted: Array<Set<number>> = users.map(() => new Set());
    let restores = 0;
    let batches = 0;
    const views: Record<string, number> = {};
    for (let u = 0; u < USERS; u++) {
      for (let i = 0; i < 6; i++) {
        const start = history.now();
        const t = await stores[i % 2]!.forUser(users[u]!).create({ title: `seed task ${i}` });
        history.created(users[u]!, t, start);
        ids[u]!.push(t.id);
        live[u]!.add(t.id);
      }
    }
    const peeks: Record<Peek, number> = { get: 0, update: 0, remove: 0 };
    const violations: string[] = [];
    let issued = 0;
    let operations = 0;
    const hotId = (u: number) => {
      const mine = ids[u]!;
      return mine[mine.length - 1 - rnd.int(Math.min(HOT_SET, mine.length))] as number;
    };

    async function client(n: number) {
      const u = n % USERS;
      const user = users[u]!;
      const engine = stores[Math.floor(n / USERS) % stores.length] as TaskStore;
      const store = engine.forUser(user);
      const hot = () => hotId(u);
      while (issued < OPERATIONS) {
        issued++;
        operations++;
        const roll = rnd.next();
        if (roll < 0.01) {
          // Evict the list index now and then (as memory pressure or a repair would), so cold list
          // builds keep racing the writes.
          issued--;
          operations--;
          await engine.cache?.driver.forUser(user).dropIndex();
          continue;
        }
        const start = history.now();
        if (roll < 0.02) {
          // Another user's task id: every operation on it must answer as for a missing id.
          const kind = rnd.pick<Peek>(["get", "update", "remove"]);
          const id = hotId((u + 1 + rnd.int(USERS - 1)) % USERS);
          peeks[kind]++;
          const attempt =
            kind === "get" ? store.get(id) : kind === "update" ? store.update({ id, patch: { title: FOREIGN_TITLE, done: true } }) : store.remove({ id });
          const code = await attempt.then(
            () => "answered",
            (err: unknown) => (err as { code?: string }).code ?? String(err),
          );
          if (code !== "not_found") violations.push(`peek: user ${u}'s ${kind} of task ${id} (user ${history.owner.get(id)}'s) was ${code}, not not_found`);
          continue;
        }
        const kind =
          roll < 0.35 ? "get"
          : roll < 0.5 ? "list"
          : roll < 0.66 ? "update"
          : roll < 0.8 ? "toggle"
          : roll < 0.85 ? "batch"
          : roll < 0.93 ? (live[u]!.size < MAX_LIVE ? "create" : "get")
          : roll < 0.97 ? (live[u]!.size > 4 ? "delete" : "get")
          : deleted[u]!.size > 0 ? "restore"
          : "get";
        const id = hot();
        try {
          switch (kind) {
            case "create": {
              const t = await store.create({ title: `created by ${n}` });
              history.created(user, t, start);
              ids[u]!.push(t.id);
              live[u]!.add(t.id);
              break;
            }
            case "update":
            case "toggle": {
              // Some renames move the due date too (or clear it), so the due views are raced as well.
              const dueOn = rnd.next() < 0.3 ? (rnd.next() < 0.3 ? null : `2030-0${1 + rnd.int(9)}-1${rnd.int(9)}`) : undefined;
              const patch = kind === "update" ? { title: `title ${rnd.int(1e6)} by ${n}`, ...(dueOn === undefined ? {} : { dueOn }) } : { done: rnd.next() < 0.5 };
              history.updated(user, await store.update({ id, patch }), start);
              break;
            }
            case "batch": {
              // Completes or reopens a few hot tasks at once, racing the single writes to them.
              const some = [...new Set([hot(), hot(), hot()])];
              const result = await store.batch({ op: rnd.next() < 0.5 ? "complete" : "reopen", ids: some });
              batches++;
              if ("tasks" in result) for (const t of result.tasks) history.updated(user, t, start);
              break;
            }
            case "delete":
              try {
                const { version } = await store.remove({ id });
                history.deleted(user, id, start, true, version);
                live[u]!.delete(id);
                deleted[u]!.add(id);
              } catch (err) {
                history.deleted(user, id, start, false);
                throw err;
              }
              break;
            case "restore": {
              // Undo of one of this user's deletes: the same id, at the version after the delete's.
              const gone = [...deleted[u]!][rnd.int(deleted[u]!.size)] as number;
              try {
                history.updated(user, await store.restore(gone), start);
                restores++;
                deleted[u]!.delete(gone);
                live[u]!.add(gone);
              } catch (err) {
                // Another client restored it first (409), or deleted again meanwhile: not a bug.
                if ((err as { code?: string }).code !== "conflict") throw err;
              }
              break;
            }
            case "get":
              try {
                history.got(user, id, start, await store.get(id));
              } catch (err) {
                if ((err as { code?: string }).code !== "not_found") throw err;
                history.got(user, id, start);
              }
              break;
            case "list": {
              // Any view: all, open or done, newest first or by due date.
              const view = { status: rnd.pick(["all", "open", "done"] as const), sort: rnd.next() < 0.3 ? ("due" as const) : ("new" as const) };
              history.listed(user, start, await store.list({ limit: 200, ...view }), view);
              views[`${view.status}/${view.sort}`] = (views[`${view.status}/${view.sort}`] ?? 0) + 1;
              break;
            }
          }
        } catch (err) {
          // Writes to a task deleted meanwhile are refused: not a bug.
          if ((err as { code?: string }).code !== "not_found") throw err;
        }
      }
    }
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));

    const report = checkHistory(history);
    violations.push(...report.violations);

    // Quiescence: every instance reads what Postgres has, and the audit finds no drift.
    let drift = 0;
    const allIds = ids.flat();
    const rows = new Map((await queries.getOwnedTasksByIds(stores[0]!.database.db, { ids: allIds })).map((r) => [r.task.id, r]));
    for (const engine of stores) {
      for (const id of allIds) {
        const got = await engine
          .forUser(history.owner.get(id)!)
          .get(id)
          .then((r) => r.task, () => undefined);
        if (JSON.stringify(got) !== JSON.stringify(rows.get(id)?.task)) {
          drift++;
          violations.push(`drift: task ${id} reads ${JSON.stringify(got)} but Postgres has ${JSON.stringify(rows.get(id)?.task)}`);
        }
      }
    }
    // Every instance's views and counts, per user, equal Postgres' (the audit below walks them too).
    for (const engine of stores) {
      for (const user of users) {
        const expected = await queries.countTasks(engine.database.db, { userId: user });
        for (const status of ["all", "open", "done"] as const) {
          for (const sort of ["new", "due"] as const) {
            const page = await engine.forUser(user).list({ limit: 200, status, sort });
            const fromPostgres = (await queries.listTasks(engine.database.db, { userId: user, status, sort, limit: 200 })).map((t) => t.id);
            if (JSON.stringify(page.tasks.map((t) => t.id)) !== JSON.stringify(fromPostgres)) {
              drift++;
              violations.push(`drift: ${status}/${sort} of user ${user} is ${page.tasks.map((t) => t.id).join(",")}, Postgres ${fromPostgres.join(",")}`);
            }
            if (JSON.stringify(page.counts) !== JSON.stringify(expected)) {
              drift++;
              violations.push(`drift: counts of user ${user} are ${JSON.stringify(page.counts)}, Postgres ${JSON.stringify(expected)}`);
            }
          }
        }
      }
    }
    const audit = await stores[0]!.audit();
    if (!audit.ok) {
      drift += audit.stale + audit.ghosts + audit.missingFromList;
      violations.push(`audit: ${JSON.stringify(audit.findings)}`);
    }

    // Other users changed nothing: each task is still its owner's, in the state its owner's
    // acknowledged write with the highest version left it (a delete and a restore each take a
    // version), and every version was taken by an acknowledged write (none by another user).
    const last = new Map<number, { version: number; deleted: boolean }>();
    // (A batch answers the tasks it left unchanged too: a version is counted once however often it was answered.)
    const acknowledgedVersions = new Map<number, Set<number>>();
    for (const e of history.events) {
      const version = e.kind === "write" ? e.version : e.kind === "delete" && e.acked ? (e.version as number) : undefined;
      if (version === undefined || (e.kind !== "write" && e.kind !== "delete")) continue;
      acknowledgedVersions.set(e.id, (acknowledgedVersions.get(e.id) ?? new Set()).add(version));
      if (version > (last.get(e.id)?.version ?? 0)) last.set(e.id, { version, deleted: e.kind === "delete" });
    }
    for (const id of allIds) {
      const row = rows.get(id);
      const final = last.get(id) as { version: number; deleted: boolean };
      const taken = acknowledgedVersions.get(id)?.size;
      if (final.version !== taken) violations.push(`task ${id}: v${final.version} after ${taken} acknowledged writes`);
      const expected = final.deleted ? "deleted" : `user ${history.owner.get(id)}'s, v${final.version}`;
      const actual = row ? `user ${row.userId}'s, v${row.task.version}` : "deleted";
      if (actual !== expected || row?.task.title === FOREIGN_TITLE) violations.push(`task ${id}: Postgres has it ${actual} (${row?.task.title}), expected ${expected}`);
    }

    const counts = history.events.reduce<Record<string, number>>((c, e) => ((c[e.kind] = (c[e.kind] ?? 0) + 1), c), {});
    const hitRatio = report.hits / report.reads;
    console.log(
      `history on ${stack.name}: ${operations} operations (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}, ` +
        `restores ${restores}, batches ${batches}, lists by view ${JSON.stringify(views)}, peeks at another user's task: get ${peeks.get}, update ${peeks.update}, remove ${peeks.remove}), ` +
        `${report.readsChecked} reads checked, ${report.hits} of ${report.reads} reads HIT (${hitRatio.toFixed(2)}), ` +
        `${report.stale} stale reads, ${report.deletedReads} reads of deleted tasks, ${report.lost} lost tasks, ${report.leaked} lists showing another user's task, ${report.badCounts} impossible counts, ` +
        `${drift} drift after quiescence (audit checked ${audit.checked} entries); seed ${seed}`,
    );
    expect(operations).toBeGreaterThanOrEqual(OPERATIONS);
    expect(violations.slice(0, 20)).toEqual([]);
    // The checks above had something to check: reads of every kind, served by the cache.
    expect(report.readsChecked).toBeGreaterThan(OPERATIONS);
    expect(counts.get ?? 0).toBeGreaterThan(0);
    expect(counts.list ?? 0).toBeGreaterThan(0);
    expect(counts.delete ?? 0).toBeGreaterThan(0);
    expect(restores).toBeGreaterThan(0);
    expect(batches).toBeGreaterThan(0);
    expect(Object.keys(views)).toHaveLength(6);
    expect(Object.values(peeks).every((n) => n > 0), JSON.stringify(peeks)).toBe(true);
    expect(hitRatio).toBeGreaterThanOrEqual(MIN_HIT_RATIO);
  });
});
