import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { Redis } from "ioredis";
import type { Cache } from "@/lib/cache";
import type { BreakerState } from "@/lib/names";
import { CacheUnavailableError } from "@/lib/cache/types";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { startPrivateRedis, type PrivateRedis } from "../support/redisServer";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy";
import { lostWrites, staleness, startWorkload, waitForConvergence, type Workload } from "../support/workload";

/**
 * Redis faults under a running workload on two store instances, against a redis-server of the
 * test's own (never the shared one), reached through a TCP proxy the test controls. For each
 * fault: no request fails, no read is stale (older than a write acknowledged before it began, or
 * of a task deleted before it began, or missing a task that exists), no acknowledged write is
 * lost, the cache converges to Postgres within 5 s of the healing (the time is printed), and
 * Redis serves HITs again afterwards.
 */
const backend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!backend) throw new Error("no postgres + redis backend");

const CONVERGENCE_LIMIT_MS = 5_000;
const cacheOptions = { timeoutMs: 150, breakerFailures: 3, breakerCooldownMs: 300 };

type CallRecord = { state: BreakerState; openedBefore: boolean; outcome: "ok" | "timeout" | "rejected" | "error" | "pending" };

/**
 * Records each cache call the store makes while `recording`: the breaker's state when it was made
 * and how it ended. A pass-through: every call still goes to the real cache.
 */
function watchCacheCalls(cache: Cache) {
  const calls: CallRecord[] = [];
  const transitions = { opened: 0, probes: 0 };
  let recording = false;
  cache.breaker.onTransition((_from, to) => {
    if (!recording) return;
    if (to === "open") transitions.opened++;
    if (to === "half-open") transitions.probes++;
  });
  const run = cache.run.bind(cache);
  cache.run = (operation, fn, subject) => {
    if (!recording) return run(operation, fn, subject);
    const call: CallRecord = { state: cache.breaker.currentState, openedBefore: transitions.opened > 0, outcome: "pending" };
    calls.push(call);
    const result = run(operation, fn, subject);
    result.then(
      () => (call.outcome = "ok"),
      (err: unknown) => {
        const reason = err instanceof CacheUnavailableError ? err.reason : undefined;
        call.outcome = reason === "breaker-open" ? "rejected" : reason === "timeout" ? "timeout" : "error";
      },
    );
    return result;
  };
  return {
    calls,
    transitions,
    start: () => (recording = true),
    stop: () => (recording = false),
  };
}

describe("Redis faults under load (postgres + private redis)", () => {
  let env: TestEnv;
  let redis: PrivateRedis;
  let proxy: TcpProxy;
  let admin: Redis;
  let stores: TaskStore[];
  let workload: Workload | undefined;

  beforeAll(async () => {
    env = await createTestEnv(backend);
    redis = await startPrivateRedis();
    proxy = await startTcpProxy({ host: "127.0.0.1", port: redis.port });
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    admin.on("error", () => {}); // it sees the SIGKILL too
  });
  afterEach(async () => {
    await workload?.stop();
    workload = undefined;
    proxy.setLatency(0);
    await proxy.setDown(false);
  });
  afterAll(async () => {
    admin.disconnect();
    await proxy.close();
    await redis.stop();
    await env.cleanup();
  });

  async function openStores() {
    const opts = { cache: { ...cacheOptions, redisUrl: proxy.url("redis") }, repairIntervalMs: 200 };
    stores = [await env.openStore(opts), await env.openStore(opts)];
    return stores;
  }

  /** Users of their own for each scenario, so a list shows only tasks of this scenario's history. */
  async function startScenarioWorkload(name: string) {
    const users = [await env.createUser("first"), await env.createUser("second"), await env.createUser("third")];
    workload = await startWorkload(stores, { users, seed: name.length });
    return workload;
  }

  /** Reads a live task through each store until it is a HIT with the breaker closed, for at most 5 s. */
  async function expectCacheUsedAgain(w: Workload) {
    const id = [...w.acked.keys()].find((i) => !w.deleted.has(i)) as number;
    const owner = w.history.owner.get(id) as string;
    const deadline = Date.now() + CONVERGENCE_LIMIT_MS;
    const outcomes: string[] = [];
    for (const store of stores) {
      let outcome = "none";
      while (Date.now() < deadline) {
        outcome = await store.forUser(owner).get(id).then((r) => r.cache, (err: unknown) => `error ${String(err)}`);
        if (outcome === "HIT" && store.cache?.breakerState === "closed") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      outcomes.push(`${outcome}/${store.cache?.breakerState}`);
    }
    // Redis is used again, without a restart of the stores.
    expect(outcomes).toEqual(["HIT/closed", "HIT/closed"]);
  }

  /** Stops the workload and checks what its clients saw; convergence is timed from `healedAt`. */
  async function checkOutcome(name: string, w: Workload, healedAt: number) {
    await w.stop();
    const convergedMs = await waitForConvergence(stores, healedAt, 10_000);
    const reads = staleness(w);
    const lost = await lostWrites(stores[0]!, w);
    const stale = reads.stale + reads.deletedReads;
    console.log(
      `${name}: ${w.operations()} requests, ${w.failures.length} failed, ${reads.readsChecked} reads checked (${reads.hits} of ${reads.reads} reads HIT), ` +
        `${stale} stale, ${lost.length + reads.lost} lost ` +
        `(${reads.stale} older versions, ${reads.deletedReads} deleted tasks, ${reads.lost} missing tasks, ${lost.length} lost writes), ` +
        `converged ${convergedMs} ms after healing`,
    );
    expect(w.failures).toEqual([]);
    // The check had reads to judge, some of them served by the cache it is judging.
    expect(reads.readsChecked).toBeGreaterThan(0);
    expect(reads.hits).toBeGreaterThan(0);
    expect(reads.violations.slice(0, 20)).toEqual([]);
    expect(lost).toEqual([]);
    expect(convergedMs).toBeLessThanOrEqual(CONVERGENCE_LIMIT_MS);
    await expectCacheUsedAgain(w);
  }

  /** Runs the workload, applies `fault` for `faultMs`, heals, and checks the outcome. */
  async function underLoad(name: string, fault: () => Promise<void>, heal: () => Promise<void>, faultMs = 1200) {
    await openStores();
    const w = await startScenarioWorkload(name);
    await new Promise((r) => setTimeout(r, 300));
    await fault();
    await new Promise((r) => setTimeout(r, faultMs));
    await heal();
    const healedAt = Date.now();
    await new Promise((r) => setTimeout(r, 500)); // traffic continues after the healing
    await checkOutcome(name, w, healedAt);
  }

  test("Redis killed (SIGKILL) mid-run and restarted: nothing fails, nothing is lost, the cache converges", async () => {
    await underLoad(
      "SIGKILL + restart",
      () => redis.stop("SIGKILL"),
      () => redis.start(),
    );
  });

  test("FLUSHALL mid-run: nothing fails and no flushed tombstone lets a deleted task back in", async () => {
    await underLoad(
      "FLUSHALL",
      async () => {
        await admin.flushall();
      },
      async () => {},
      300,
    );
  });

  test("CLIENT PAUSE longer than the command timeout: requests go to Postgres, then back to Redis", async () => {
    await underLoad(
      "CLIENT PAUSE 1500 ms",
      async () => {
        await admin.client("PAUSE", 1500, "ALL");
      },
      async () => {
        await new Promise((r) => setTimeout(r, 400)); // the pause ends by itself
      },
    );
  });

  test("500 ms latency on every Redis reply: the breaker opens, so requests don't each wait for a timeout", async () => {
    let watchers: Array<ReturnType<typeof watchCacheCalls>> = [];
    await underLoad(
      "500 ms latency",
      async () => {
        watchers = stores.map((s) => watchCacheCalls(s.cache as Cache));
        for (const w of watchers) w.start();
        proxy.setLatency(500);
        await new Promise((r) => setTimeout(r, 1000));
        for (const w of watchers) w.stop();
      },
      async () => proxy.setLatency(0),
      200,
    );
    const calls = watchers.flatMap((w) => w.calls);
    const count = (pick: (c: CallRecord) => boolean) => calls.filter(pick).length;
    const probes = watchers.reduce((n, w) => n + w.transitions.probes, 0);
    const madeWhileOpen = calls.filter((c) => c.state === "open");
    console.log(
      `500 ms latency: ${calls.length} cache calls made in 1 s of fault, ${count((c) => c.outcome === "timeout")} timed out ` +
        `(${count((c) => c.outcome === "timeout" && c.state === "closed")} made before the breaker opened, ` +
        `${count((c) => c.outcome === "timeout" && c.state === "half-open")} of ${probes} probes), ` +
        `${count((c) => c.outcome === "rejected")} refused at once by the open breaker`,
    );
    // Each instance's breaker opened, and stayed open while Redis stayed slow (every probe failed).
    expect(watchers.map((w) => w.transitions.opened >= 1)).toEqual([true, true]);
    expect(count((c) => c.state === "closed" && c.openedBefore)).toBe(0);
    // Once open, a call waits for a timeout only as the one probe per cooldown; the rest are refused at once.
    expect(madeWhileOpen.length).toBeGreaterThan(0);
    expect(madeWhileOpen.filter((c) => c.outcome !== "rejected")).toEqual([]);
    expect(count((c) => c.state === "half-open" && c.outcome === "timeout")).toBeLessThanOrEqual(probes);
  });

  test("connections reset again and again: requests still succeed and the cache converges", async () => {
    let timer: ReturnType<typeof setInterval> | undefined;
    await underLoad(
      "connection resets",
      async () => {
        timer = setInterval(() => proxy.resetConnections(), 100);
      },
      async () => clearInterval(timer),
    );
  });

  test("Redis down when the app starts: it serves from Postgres, then uses Redis once it is up", async () => {
    await proxy.setDown(true);
    await openStores();
    const created = await stores[0]!.forUser(env.userId).create({ title: "born while Redis was down" });
    expect((await stores[1]!.forUser(env.userId).get(created.id)).cache).toBe("BYPASS");
    const w = await startScenarioWorkload("Redis down at start");
    await new Promise((r) => setTimeout(r, 800));
    await proxy.setDown(false);
    const healedAt = Date.now();
    let outcome = "BYPASS";
    while (outcome !== "HIT" && Date.now() - healedAt < CONVERGENCE_LIMIT_MS) {
      await new Promise((r) => setTimeout(r, 50));
      outcome = (await stores[1]!.forUser(env.userId).get(created.id)).cache;
    }
    const inUseAt = Date.now();
    console.log(`Redis down at start: cache in use ${inUseAt - healedAt} ms after Redis came up`);
    expect(outcome).toBe("HIT");
    await new Promise((r) => setTimeout(r, 700)); // traffic continues with the cache in use
    // Reconnecting is bounded above; convergence is counted from the cache being in use again.
    await checkOutcome("Redis down at start", w, inUseAt);
  });
});
