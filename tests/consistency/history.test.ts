import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as queries from "@/lib/tasks/queries";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { seededRandom, seedFromEnv } from "../support/random";

/**
 * History checker: many concurrent clients on two store instances (own Postgres pools and cache
 * connections, as two app servers) run random operations, each client for one of several users on
 * that user's small hot set. Every operation's
 * start, end, outcome and version is recorded, then the history is checked:
 *  - no read returns a version older than the newest version acknowledged before the read began;
 *  - no read returns a task whose delete was acknowledged before the read began;
 *  - no read misses a task created before it began and not being deleted while it ran;
 *  - no read of another user's task id ever returns it (it is not_found, as a missing id);
 *  - after quiescence, the cache equals Postgres (audit, and a read through each instance).
 * The list index is evicted now and then, so cold index builds race the writes too.
 * Replay a failure with HISTORY_SEED=<seed printed below>.
 */
const USERS = 8;
const CLIENTS = 32;
const OPERATIONS = 5_000;
const HOT_SET = 24;
const MAX_LIVE = 40;

type Op =
  | { kind: "create"; id?: number; version?: number }
  | { kind: "update" | "toggle"; id: number; version?: number }
  | { kind: "delete"; id: number }
  | { kind: "get"; id: number; version?: number; notFound?: boolean }
  | { kind: "list"; seen?: Map<number, number> }
  /** A read of another user's task: must be not_found. */
  | { kind: "peek"; id: number; leaked?: boolean };
type Recorded = Op & { user: number; start: number; end: number; ok: boolean };

const redisBackend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!redisBackend) throw new Error("no postgres + redis backend");

describe("history of concurrent operations on two instances (postgres + redis)", () => {
  let env: TestEnv;
  let stores: TaskStore[];

  beforeAll(async () => {
    env = await createTestEnv(redisBackend);
    stores = [await env.openStore(), await env.openStore()];
  });
  afterAll(async () => {
    await env.cleanup();
  });

  test(`${USERS} users × ${CLIENTS / USERS} clients, ${OPERATIONS} random operations: no stale read, no read of a deleted or another user's task, no drift`, async () => {
    const seed = seedFromEnv("HISTORY_SEED");
    const rnd = seededRandom(seed);
    console.log(`history seed: ${seed} (replay with HISTORY_SEED=${seed})`);

    const users = await Promise.all(Array.from({ length: USERS }, (_, u) => env.createUser(`user${u}`)));
    // Per user: the ids created (newest last) and those not deleted.
    const ids: number[][] = users.map(() => []);
    const live: Array<Set<number>> = users.map(() => new Set());
    const owner = new Map<number, number>();
    for (let u = 0; u < USERS; u++) {
      for (let i = 0; i < 6; i++) {
        const t = await stores[i % 2]!.forUser(users[u]!).create({ title: `seed task ${i}` });
        ids[u]!.push(t.id);
        live[u]!.add(t.id);
        owner.set(t.id, u);
      }
    }
    const history: Recorded[] = [];
    let issued = 0;
    const hotId = (u: number) => {
      const mine = ids[u]!;
      return mine[mine.length - 1 - rnd.int(Math.min(HOT_SET, mine.length))] as number;
    };

    async function client(n: number) {
      const u = n % USERS;
      const engine = stores[Math.floor(n / USERS) % stores.length] as TaskStore;
      const store = engine.forUser(users[u]!);
      const hot = () => hotId(u);
      while (issued < OPERATIONS) {
        issued++;
        const roll = rnd.next();
        if (roll < 0.01) {
          // Evict the list index now and then (as memory pressure or a repair would), so cold list
          // builds keep racing the writes.
          issued--;
          await engine.cache?.driver.forUser(users[u]!).dropIndex();
          continue;
        }
        let op: Op;
        if (roll < 0.02) op = { kind: "peek", id: hotId((u + 1 + rnd.int(USERS - 1)) % USERS) };
        else if (roll < 0.35) op = { kind: "get", id: hot() };
        else if (roll < 0.5) op = { kind: "list" };
        else if (roll < 0.7) op = { kind: "update", id: hot() };
        else if (roll < 0.85) op = { kind: "toggle", id: hot() };
        else if (roll < 0.93) op = live[u]!.size < MAX_LIVE ? { kind: "create" } : { kind: "get", id: hot() };
        else op = live[u]!.size > 4 ? { kind: "delete", id: hot() } : { kind: "get", id: hot() };
        const start = performance.now();
        let ok = true;
        try {
          switch (op.kind) {
            case "create": {
              const t = await store.create({ title: `created by ${n}` });
              op.id = t.id;
              op.version = t.version;
              ids[u]!.push(t.id);
              live[u]!.add(t.id);
              owner.set(t.id, u);
              break;
            }
            case "update":
            case "toggle": {
              const t = await store.update({
                id: op.id,
                patch: op.kind === "update" ? { title: `title ${rnd.int(1e6)} by ${n}` } : { done: rnd.next() < 0.5 },
              });
              op.version = t.version;
              break;
            }
            case "delete":
              await store.remove({ id: op.id });
              live[u]!.delete(op.id);
              break;
            case "get":
              try {
                op.version = (await store.get(op.id)).task.version;
              } catch (err) {
                if ((err as { code?: string }).code !== "not_found") throw err;
                op.notFound = true;
              }
              break;
            case "list": {
              const page = await store.list({ limit: 200 });
              op.seen = new Map(page.tasks.map((t) => [t.id, t.version]));
              break;
            }
            case "peek":
              try {
                await store.get(op.id);
                op.leaked = true;
              } catch (err) {
                if ((err as { code?: string }).code !== "not_found") throw err;
              }
              break;
          }
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code !== "not_found") throw err; // writes to a task deleted meanwhile: refused, not a bug
          ok = false;
        }
        history.push({ ...op, user: u, start, end: performance.now(), ok });
      }
    }
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));

    // Acknowledged writes per id, for the checks.
    type Ack = { end: number; start: number; version?: number; deleted?: boolean };
    const acks = new Map<number, Ack[]>();
    const deleteStarts = new Map<number, number[]>();
    for (const h of history) {
      if (h.kind === "delete") deleteStarts.set(h.id, [...(deleteStarts.get(h.id) ?? []), h.start]);
      if (!h.ok || h.kind === "get" || h.kind === "list" || h.kind === "peek" || h.id === undefined) continue;
      const a: Ack = { end: h.end, start: h.start, ...(h.kind === "delete" ? { deleted: true } : { version: h.version }) };
      acks.set(h.id, [...(acks.get(h.id) ?? []), a]);
    }
    const violations: string[] = [];
    let readsChecked = 0;
    let stale = 0;
    let deletedReads = 0;
    let lost = 0;
    let leaked = 0;
    const checkRead = (id: number, version: number | undefined, start: number, end: number, what: string) => {
      readsChecked++;
      const before = (acks.get(id) ?? []).filter((a) => a.end < start);
      const newest = Math.max(0, ...before.map((a) => a.version ?? 0));
      const deleted = before.some((a) => a.deleted);
      if (version !== undefined) {
        if (deleted) {
          deletedReads++;
          violations.push(`${what}: task ${id} v${version} read after its delete was acknowledged`);
        } else if (version < newest) {
          stale++;
          violations.push(`${what}: task ${id} read at v${version}, v${newest} was acknowledged before the read began`);
        }
      } else if (newest > 0 && !deleted && !(deleteStarts.get(id) ?? []).some((s) => s < end)) {
        lost++;
        violations.push(`${what}: task ${id} (v${newest} acknowledged) not found, and no delete was under way`);
      }
    };
    for (const h of history) {
      if (h.kind === "peek" && h.leaked) {
        leaked++;
        violations.push(`peek: user ${h.user} read task ${h.id} of user ${owner.get(h.id)}`);
      }
      if (h.kind === "get" && h.ok) checkRead(h.id, h.notFound ? undefined : h.version, h.start, h.end, "get");
      if (h.kind === "list" && h.seen) {
        for (const [id, version] of h.seen) {
          if (owner.get(id) !== h.user) {
            leaked++;
            violations.push(`list: user ${h.user} was shown task ${id} of user ${owner.get(id)}`);
          }
          checkRead(id, version, h.start, h.end, "list");
        }
        for (const [id, list] of acks) {
          if (owner.get(id) !== h.user) continue;
          const created = list.some((a) => a.version === 1 && a.end < h.start);
          if (created && !h.seen.has(id)) checkRead(id, undefined, h.start, h.end, "list");
        }
      }
    }

    // Quiescence: every instance reads what Postgres has, and the audit finds no drift.
    let drift = 0;
    const allIds = ids.flat();
    const rows = new Map((await queries.getOwnedTasksByIds(stores[0]!.database.db, { ids: allIds })).map((r) => [r.task.id, r.task]));
    for (const engine of stores) {
      for (const id of allIds) {
        const got = await engine
          .forUser(users[owner.get(id)!]!)
          .get(id)
          .then((r) => r.task, () => undefined);
        if (JSON.stringify(got) !== JSON.stringify(rows.get(id))) {
          drift++;
          violations.push(`drift: task ${id} reads ${JSON.stringify(got)} but Postgres has ${JSON.stringify(rows.get(id))}`);
        }
      }
    }
    const audit = await stores[0]!.audit();
    if (!audit.ok) {
      drift += audit.stale + audit.ghosts + audit.missingFromList;
      violations.push(`audit: ${JSON.stringify(audit.findings)}`);
    }
    const counts = history.reduce<Record<string, number>>((c, h) => ((c[h.kind] = (c[h.kind] ?? 0) + 1), c), {});
    console.log(
      `history: ${history.length} operations (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}), ` +
        `${readsChecked} reads checked, ${stale} stale reads, ${deletedReads} reads of deleted tasks, ${lost} lost tasks, ${leaked} reads of another user's task, ` +
        `${drift} drift after quiescence (audit checked ${audit.checked} entries); seed ${seed}`,
    );
    expect(history.length).toBeGreaterThanOrEqual(OPERATIONS);
    expect(violations.slice(0, 20)).toEqual([]);
  });
});
