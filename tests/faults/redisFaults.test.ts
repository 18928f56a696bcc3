import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { Redis } from "ioredis";
import type { TaskStore } from "@/lib/taskStore";
import { BACKENDS, createTestEnv, type TestEnv } from "../support/backends";
import { startPrivateRedis, type PrivateRedis } from "../support/redisServer";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy";
import { lostWrites, startWorkload, waitForConvergence, type Workload } from "../support/workload";

/**
 * Redis faults under a running workload on two store instances, against a redis-server of the
 * test's own (never the shared one), reached through a TCP proxy the test controls. For each
 * fault: no request fails, no acknowledged write is lost, Redis is used again after it heals,
 * and the cache converges to Postgres within 5 s of the healing (the time is printed).
 */
const backend = BACKENDS.find((b) => b.cacheDriver === "redis");
if (!backend) throw new Error("no postgres + redis backend");

const CONVERGENCE_LIMIT_MS = 5_000;
const cacheOptions = { timeoutMs: 150, breakerFailures: 3, breakerCooldownMs: 300 };

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

  /** Runs the workload, applies `fault` for `faultMs`, heals, and checks the outcome. */
  async function underLoad(name: string, fault: () => Promise<void>, heal: () => Promise<void>, faultMs = 1200) {
    await openStores();
    const users = [env.userId, await env.createUser("second"), await env.createUser("third")];
    workload = await startWorkload(stores, { users, seed: name.length });
    await new Promise((r) => setTimeout(r, 300));
    await fault();
    await new Promise((r) => setTimeout(r, faultMs));
    await heal();
    const healedAt = Date.now();
    await new Promise((r) => setTimeout(r, 500)); // traffic continues after the healing
    await workload.stop();
    const convergedMs = await waitForConvergence(stores, healedAt, 10_000);
    const hitsAfter = await Promise.all(stores.map((s) => s.forUser(env.userId).get(workload!.ids[0] as number).then((r) => r.cache, () => "GONE")));
    console.log(`${name}: ${workload.operations()} operations, ${workload.failures.length} failed, converged ${convergedMs} ms after healing`);
    expect(workload.failures).toEqual([]);
    expect(await lostWrites(stores[0]!, workload)).toEqual([]);
    expect(convergedMs).toBeLessThanOrEqual(CONVERGENCE_LIMIT_MS);
    // Redis is used again, without a restart of the stores.
    expect(hitsAfter.filter((h) => h === "BYPASS")).toEqual([]);
    expect(stores.map((s) => s.cache?.breakerState)).toEqual(["closed", "closed"]);
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
    let timeoutsDuringFault = 0;
    await underLoad(
      "500 ms latency",
      async () => {
        proxy.setLatency(500);
        const before = stores.reduce((n, s) => n + (s.cache?.breaker.stats.timeouts ?? 0), 0);
        await new Promise((r) => setTimeout(r, 1000));
        timeoutsDuringFault = stores.reduce((n, s) => n + (s.cache?.breaker.stats.timeouts ?? 0), 0) - before;
      },
      async () => proxy.setLatency(0),
      200,
    );
    const refused = stores.reduce((n, s) => n + (s.cache?.breaker.stats.rejected ?? 0), 0);
    console.log(`500 ms latency: ${timeoutsDuringFault} cache calls timed out in 1 s of fault, ${refused} refused at once by the open breaker`);
    // Per instance: the failures that open the breaker plus about one probe per cooldown, while
    // every other call during the fault was refused at once.
    expect(timeoutsDuringFault).toBeLessThanOrEqual(2 * (cacheOptions.breakerFailures + 8 + 1000 / cacheOptions.breakerCooldownMs));
    expect(refused).toBeGreaterThan(timeoutsDuringFault);
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
    await proxy.setDown(false);
    const healedAt = Date.now();
    let outcome = "BYPASS";
    while (outcome !== "HIT" && Date.now() - healedAt < CONVERGENCE_LIMIT_MS) {
      await new Promise((r) => setTimeout(r, 50));
      outcome = (await stores[1]!.forUser(env.userId).get(created.id)).cache;
    }
    console.log(`Redis down at start: cache in use ${Date.now() - healedAt} ms after Redis came up`);
    expect(outcome).toBe("HIT");
    expect(await waitForConvergence(stores, healedAt)).toBeLessThanOrEqual(CONVERGENCE_LIMIT_MS);
  });
});
