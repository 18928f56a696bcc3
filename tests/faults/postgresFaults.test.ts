import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openDatabase, type Database } from "@/lib/db/client";
import { tasks as tasksTable, user } from "@/lib/db/schema";
import { isTaskError } from "@/lib/tasks/errors";
import type { Task } from "@/lib/tasks/schema";
import type { TaskStore, UserTaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, testWhere, type TestEnv } from "../support/backends";
import { postgresBinDir, startPrivatePostgres, type PrivatePostgres } from "../support/postgresServer";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy";
import { eq } from "drizzle-orm";

// Postgres stalling, refusing, crashing and crawling, between the app and a database of its own:
// every answer comes within the deadline, nothing acknowledged is lost, and clients that retry
// with their Idempotency-Keys never make a row twice.

const backend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!backend) throw new Error("no postgres + redis backend");

/** The stores' database settings: a short deadline keeps the test short; the guarantees scale with it. */
const DEADLINE_MS = 1500;
const DATABASE = { timeoutMs: DEADLINE_MS, breakerFailures: 3, breakerCooldownMs: 500 };
/** What "answered within the deadline" allows on top, for this process's own work on a busy machine. */
const SLACK_MS = 1000;

type Attempt = { op: "create" | "get" | "list"; phase: string; ms: number; outcome: "ok" | "unavailable" | "other"; detail?: string; cache?: string };

type Load = {
  attempts: Attempt[];
  /** Every create acknowledged to its client: title → task. */
  acknowledged: Map<string, Task>;
  /** Sets the phase attempts are recorded under. */
  phase(name: string): void;
  /** Stops the clients; each first retries its unfinished create (same key) until it is acknowledged. */
  stop(): Promise<void>;
};

/**
 * Clients on several app instances: writers (creates, each retried with its own key until
 * acknowledged) and as many readers (gets of acknowledged tasks and lists).
 */
function startLoad(stores: UserTaskStore[], clients: number): Load {
  const attempts: Attempt[] = [];
  const acknowledged = new Map<string, Task>();
  let phase = "before";
  let stopping = false;
  const runId = randomUUID().slice(0, 8);
  const timed = async <T>(op: Attempt["op"], fn: () => Promise<T>, cacheOf?: (v: T) => string): Promise<T | undefined> => {
    const started = performance.now();
    const at = phase;
    try {
      const value = await fn();
      attempts.push({ op, phase: at, ms: performance.now() - started, outcome: "ok", cache: cacheOf?.(value) });
      return value;
    } catch (err) {
      const unavailable = isTaskError(err) && err.code === "service_unavailable";
      attempts.push({ op, phase: at, ms: performance.now() - started, outcome: unavailable ? "unavailable" : "other", detail: isTaskError(err) ? err.code : String(err) });
      return undefined;
    }
  };
  const client = async (n: number) => {
    const store = stores[n % stores.length] as UserTaskStore;
    const writer = n % 2 === 0;
    for (let i = 0; !stopping; i++) {
      if (writer) {
        const title = `${runId} client ${n} task ${i}`;
        const key = randomUUID();
        // The client retries until acknowledged, with the same key each time.
        for (;;) {
          const task = await timed("create", () => store.create({ title }, { idempotencyKey: key }));
          if (task) {
            acknowledged.set(title, task);
            break;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      } else if (i % 2 === 0) {
        const known = [...acknowledged.values()];
        const pick = known[Math.floor(Math.random() * known.length)];
        if (pick) await timed("get", () => store.get(pick.id), (r) => r.cache);
      } else {
        await timed("list", () => store.list({ limit: 50 }), (r) => r.cache);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const running = Array.from({ length: clients }, (_, n) => client(n));
  return {
    attempts,
    acknowledged,
    phase: (name) => {
      phase = name;
    },
    async stop() {
      stopping = true;
      await Promise.all(running);
    },
  };
}

/** How long until a write succeeds again (retrying every 50 ms). */
async function timeUntilWritesWork(store: UserTaskStore, limitMs = 10_000): Promise<number> {
  const started = performance.now();
  const key = randomUUID();
  while (performance.now() - started < limitMs) {
    try {
      await store.create({ title: "probe after recovery" }, { idempotencyKey: key });
      return performance.now() - started;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return Infinity;
}

/** The checks every fault shares; returns the figures for the log. */
async function checkAfterFault(load: Load, database: Database, userId: string, stores: TaskStore[]) {
  const slowest = Math.max(...load.attempts.map((a) => a.ms));
  const unexpected = load.attempts.filter((a) => a.outcome === "other");
  expect(unexpected, "only 503s, never another error").toEqual([]);
  expect(slowest, "every call answered within the deadline").toBeLessThanOrEqual(DEADLINE_MS + SLACK_MS);
  const rows = await database.db.select().from(tasksTable).where(eq(tasksTable.userId, userId));
  const byTitle = new Map<string, number>();
  for (const r of rows) byTitle.set(r.title, (byTitle.get(r.title) ?? 0) + 1);
  for (const [title, task] of load.acknowledged) {
    expect(byTitle.get(title), `acknowledged "${title}" is in Postgres exactly once`).toBe(1);
    expect(rows.find((r) => r.title === title)?.id).toBe(task.id);
  }
  const duplicates = [...byTitle].filter(([title, n]) => n > 1 && title !== "probe after recovery");
  expect(duplicates, "no create made twice").toEqual([]);
  for (const store of stores) await store.repairNow();
  const audit = await stores[0]!.audit(userId);
  expect(audit.ok, JSON.stringify(audit.findings?.slice(0, 5))).toBe(true);
  const during = load.attempts.filter((a) => a.phase === "fault");
  return {
    attempts: load.attempts.length,
    slowestMs: Math.round(slowest),
    byOp: Object.fromEntries(["create", "get", "list"].map((op) => [op, during.filter((a) => a.op === op).map((a) => `${a.outcome}${a.cache ? ":" + a.cache : ""}`).reduce<Record<string, number>>((m, k) => ((m[k] = (m[k] ?? 0) + 1), m), {})])),
    duringFault: { total: during.length, unavailable: during.filter((a) => a.outcome === "unavailable").length, cachedReads: during.filter((a) => a.outcome === "ok" && a.cache === "HIT").length },
    acknowledged: load.acknowledged.size,
  };
}

/**
 * One fault under load: clients run, the fault is injected for `faultMs`, healed; then how long
 * until writes work again, and the shared checks. Returns the figures (also logged).
 */
async function underFault(
  name: string,
  users: UserTaskStore[],
  stores: TaskStore[],
  database: Database,
  userId: string,
  fault: { inject(): Promise<void> | void; heal(): Promise<void> | void; faultMs: number },
) {
  const load = startLoad(users, 8);
  await new Promise((r) => setTimeout(r, 700));
  load.phase("fault");
  await fault.inject();
  await new Promise((r) => setTimeout(r, fault.faultMs));
  await fault.heal();
  load.phase("after");
  const recoveredIn = await timeUntilWritesWork(users[1]!);
  await new Promise((r) => setTimeout(r, 1000));
  await load.stop();
  expect(recoveredIn, "writes work again within 2 s of recovery").toBeLessThanOrEqual(2000);
  const figures = await checkAfterFault(load, database, userId, stores);
  console.info(name, { ...figures, recoveredInMs: Math.round(recoveredIn), poolResets: stores.map((s) => s.database.poolResets) });
  return figures;
}

describe("Postgres faults behind a proxy the test controls", () => {
  let env: TestEnv;
  let proxy: TcpProxy;
  let stores: TaskStore[];
  let users: UserTaskStore[];
  let admin: Database;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    const url = new URL(env.databaseUrl as string);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.host = `127.0.0.1:${proxy.port}`;
    stores = [await env.openStore({ databaseUrl: url.toString(), database: DATABASE }), await env.openStore({ databaseUrl: url.toString(), database: DATABASE })];
    users = stores.map((s) => s.forUser(env.userId));
    admin = await openDatabase({ kind: "postgres", url: env.databaseUrl as string, poolMax: 2, prepare: true, timeoutMs: 5000 });
  });
  afterAll(async () => {
    proxy.setStalled(false);
    await admin.close();
    await proxy.close();
    await env.cleanup();
  });

  test("down: writes answer 503 with Retry-After and change no cache entry; cached reads still answer; writes work within 2 s of its return", async () => {
    const [store] = users as [UserTaskStore];
    const kept = await store.create({ title: "kept" });
    const doomed = await store.create({ title: "not deleted while Postgres is down" });
    await store.list({ limit: 50 });
    const driver = stores[0]!.cache!.driver.forUser(env.userId);
    const before = { entries: await driver.getTasks([kept.id, doomed.id]), index: await driver.readIndex().then((i) => i && i.views["all:new"]) };

    await proxy.setDown(true);
    // The pool learns its connections are gone (a statement on a dropped connection may have run: see the next tests).
    await stores[0]!.database.ping().catch(() => undefined);
    for (const attempt of [
      () => store.create({ title: "never written" }),
      () => store.update({ id: kept.id, patch: { title: "never written" } }),
      () => store.remove({ id: doomed.id }),
      () => store.create({ title: "refused at once: the breaker is open" }),
    ]) {
      const started = performance.now();
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: "service_unavailable", status: 503 });
      expect((err as { retryAfterSeconds?: number }).retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(performance.now() - started).toBeLessThan(DEADLINE_MS);
    }
    expect(stores[0]!.database.breakerState).toBe("open");
    expect({ entries: await driver.getTasks([kept.id, doomed.id]), index: await driver.readIndex().then((i) => i && i.views["all:new"]) }).toEqual(before);
    // What the cache already holds is still served.
    expect(await store.get(kept.id)).toEqual({ task: kept, cache: "HIT" });
    expect((await store.list({ limit: 50 })).cache).toBe("HIT");
    expect(stores[0]!.pendingRepairCount).toBe(0);

    await proxy.setDown(false);
    expect(await timeUntilWritesWork(store)).toBeLessThanOrEqual(2000);
    const updated = await store.update({ id: kept.id, patch: { title: "written once it was back" } });
    expect(updated.version).toBe(2);
    expect(await store.get(kept.id)).toEqual({ task: updated, cache: "HIT" });
    expect((await stores[0]!.audit(env.userId)).ok).toBe(true);
  });

  test("a list whose index build fails on Postgres gives the build lease back: after recovery nobody waits for it", async () => {
    const [store] = users as [UserTaskStore];
    const slot = stores[0]!.cache!.driver.forUser(env.userId);
    await slot.dropIndex();
    await proxy.setDown(true);
    await stores[0]!.database.ping().catch(() => undefined);
    await expect(store.list({ limit: 50 })).rejects.toMatchObject({ code: "service_unavailable" });
    const probe = await slot.startIndexBuild(30_000);
    expect(probe.state, "the failed build's lease was given back").toBe("started");
    if (probe.state === "started") await slot.abandonIndexBuild(probe.token);
    await proxy.setDown(false);
    await timeUntilWritesWork(store);
    const started = performance.now();
    expect((await store.list({ limit: 50 })).cache).toBe("MISS");
    expect(performance.now() - started).toBeLessThan(500);
  });

  test("an answer lost after the commit: the 503 goes out, the retry with the same key replays the commit, nothing is written twice, and the cache shows it", async () => {
    const [store, other] = users as [UserTaskStore, UserTaskStore];
    await store.list({ limit: 50 });
    const key = randomUUID();
    // The statement carrying the title reaches Postgres and commits; its answer never comes back.
    proxy.stallRepliesAfter("answer lost");
    const started = performance.now();
    await expect(store.create({ title: "answer lost" }, { idempotencyKey: key })).rejects.toMatchObject({ code: "service_unavailable" });
    expect(performance.now() - started).toBeLessThanOrEqual(DEADLINE_MS + SLACK_MS);
    proxy.setStalled(false);
    const committed = await admin.db.select().from(tasksTable).where(eq(tasksTable.title, "answer lost"));
    expect(committed).toHaveLength(1);

    // Another instance reads meanwhile: its list must not be the cached index without the commit.
    await new Promise((r) => setTimeout(r, 600)); // the breaker's cooldown
    const retried = await store.create({ title: "answer lost" }, { idempotencyKey: key });
    expect(retried.id).toBe(committed[0]!.id);
    expect(await admin.db.select().from(tasksTable).where(eq(tasksTable.title, "answer lost"))).toHaveLength(1);
    for (const s of [store, other]) expect((await s.list({ limit: 50 })).tasks.map((t) => t.id)).toContain(retried.id);
    // The same key with another request is refused, and writes nothing.
    await expect(store.create({ title: "something else" }, { idempotencyKey: key })).rejects.toMatchObject({ code: "idempotency_key_reused", status: 422 });
    expect(await admin.db.select().from(tasksTable).where(eq(tasksTable.title, "something else"))).toHaveLength(0);
  });

  test("stall (accepts, never answers) under load: every call answered within the deadline, cached reads served, no duplicates, no late writes", async () => {
    await timeUntilWritesWork(users[0]!);
    const figures = await underFault("stall", users, stores, admin, env.userId, {
      inject: () => proxy.setStalled("both"),
      heal: () => proxy.setStalled(false),
      faultMs: 3000,
    });
    expect(figures.duringFault.unavailable).toBeGreaterThan(0);
    expect(figures.duringFault.cachedReads).toBeGreaterThan(0);
  });

  test("refused (the server gone) under load: fast 503s, no duplicates, writes back within 2 s", async () => {
    const figures = await underFault("refused", users, stores, admin, env.userId, {
      inject: () => proxy.setDown(true),
      heal: () => proxy.setDown(false),
      faultMs: 2000,
    });
    expect(figures.duringFault.unavailable).toBeGreaterThan(0);
  });

  test("slow (500 ms per reply) under load: every call answered within the deadline, no duplicates", async () => {
    await underFault("slow", users, stores, admin, env.userId, {
      inject: () => proxy.setLatency(500),
      heal: () => proxy.setLatency(0),
      faultMs: 3000,
    });
  });
});

describe("Postgres crashes and restarts under load (a private cluster)", () => {
  const available = postgresBinDir() !== null;
  let env: TestEnv;
  let pg: PrivatePostgres;
  let stores: TaskStore[];
  let users: UserTaskStore[];
  let admin: Database;
  let userId: string;

  beforeAll(async () => {
    if (!available) return;
    env = await createTestEnv(backend);
    pg = await startPrivatePostgres();
    admin = await openDatabase({ kind: "postgres", url: pg.url, poolMax: 2, prepare: true, timeoutMs: 10_000 });
    await admin.migrate();
    userId = randomUUID().replaceAll("-", "");
    await admin.db.insert(user).values({ id: userId, name: "crash", email: `crash-${userId}@example.test` });
    stores = [await env.openStore({ databaseUrl: pg.url, database: DATABASE }), await env.openStore({ databaseUrl: pg.url, database: DATABASE })];
    users = stores.map((s) => s.forUser(userId));
  }, 60_000);
  afterAll(async () => {
    if (!available) return;
    await admin.close();
    await env.cleanup();
    await pg.destroy();
  });

  testWhere(available)("crash (immediate shutdown) and restart mid-load: 503s within the deadline, nothing acknowledged lost, no duplicates", async () => {
    const figures = await underFault("crash", users, stores, admin, userId, { inject: () => pg.crash(), heal: () => pg.start(), faultMs: 1500 });
    expect(figures.duringFault.unavailable).toBeGreaterThan(0);
  }, 60_000);
});
