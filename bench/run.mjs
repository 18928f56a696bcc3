#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --no-build]`: builds and starts the production server against
// real Postgres and Redis (its own database and key prefix), seeds data, drives load from a
// separate process (bench/load.mjs, autocannon), prints a markdown table and writes
// bench/results/latest.json. Figures are compared within one run; nothing here is a test.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import postgres from "postgres";
import { Redis } from "ioredis";
import { tsImport } from "tsx/esm/api";
import { createDatabase, deleteKeysMatching, freePort } from "../scripts/lib/services.mjs";

const USAGE = `usage: npm run bench [-- --quick] [-- --no-build] [-- --dry-run]
  --quick     short runs (the CI smoke run)
  --no-build  reuse the existing production build
  --dry-run   set up and tear down the bench's database and key prefix, print the key names it
              would use, and stop (no build, no servers, no load)
Postgres: TEST_DATABASE_URL or BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
Redis:    TEST_REDIS_URL or BENCH_REDIS_URL (default redis://127.0.0.1:6379)`;

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  console.log(USAGE);
  process.exit(0);
}

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const quick = process.argv.includes("--quick");
const build = !process.argv.includes("--no-build");
const dryRun = process.argv.includes("--dry-run");
const SECONDS = quick ? 2 : 8;
const MIXED_SECONDS = quick ? 3 : 20;
const LIST_SIZES = [100, 10_000, 100_000];
const HOT = 1000;
const adminUrl = process.env.TEST_DATABASE_URL || process.env.BENCH_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.TEST_REDIS_URL || process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379";
const servers = [];
const cleanups = [];
// Key names come from the app's own key module, so the bench can't drift from what the app writes.
// lib/ is `server-only`: `npm run bench` runs this file with --conditions=react-server, as Next.js resolves it.
const { everythingPattern, userCacheKeys } = await tsImport("../lib/cache/keys.ts", import.meta.url);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startServer(name, env) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(root, "node_modules/next/dist/bin/next"), "start", "-p", String(port)], {
    cwd: root,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", LOG_LEVEL: "error", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const server = { name, port, url: `http://127.0.0.1:${port}`, pid: child.pid, child };
  servers.push(server);
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`${server.url}/api/ping`);
      if (res.ok) return server;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`server ${name} did not start`);
}

/**
 * A private Redis Cluster from `npm run cluster`'s script, in its own process (it ends when this
 * one closes its standard input, or dies): its seeds, or null when redis-server is not installed.
 */
async function startCluster() {
  if (spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status !== 0) return null;
  const child = spawn(process.execPath, [path.join(root, "node_modules/tsx/dist/cli.mjs"), path.join(root, "scripts/redis-cluster.ts")], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  cleanups.push(
    () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.stdin.end();
      }),
  );
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.on("data", (d) => {
      out += d;
      const line = /^REDIS_CLUSTER_NODES=(.+)$/m.exec(out);
      if (line) resolve(line[1].trim());
    });
    child.once("exit", (code) => reject(new Error(err.trim() || `the cluster script exited (${code})`)));
  });
}

/** Warms the server on the same requests (JIT, pools, connections), then measures. */
function load(server, config) {
  run(server, { ...config, seconds: quick ? 1 : 2 });
  return run(server, config);
}

/** As `load`, without blocking this process (so it can do something else meanwhile). */
async function loadAsync(server, config) {
  await runAsync(server, { ...config, seconds: quick ? 1 : 2 });
  return runAsync(server, config);
}

function runAsync(server, config) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, "bench/load.mjs"), JSON.stringify({ url: server.url, seconds: SECONDS, ...config })], { cwd: root });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop())) : reject(new Error(`load generator failed: ${err}`))));
  });
}

/** As `load`, also counting the server's Postgres statements during the measured run. */
async function loadCountingStatements(server, config) {
  run(server, { ...config, seconds: quick ? 1 : 2 });
  const before = await statementsOf(server);
  const result = run(server, config);
  result.statements = (await statementsOf(server)) - before;
  return result;
}

function run(server, config) {
  const r = spawnSync(process.execPath, [path.join(root, "bench/load.mjs"), JSON.stringify({ url: server.url, seconds: SECONDS, ...config })], {
    cwd: root,
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`load generator failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

/**
 * fetch, tried again once: after a long load run the server may already have closed the idle
 * keep-alive connection this process reuses ("other side closed"), before the request was read.
 */
async function fetchRetrying(url, init) {
  try {
    return await fetch(url, init);
  } catch {
    await sleep(100);
    return fetch(url, init);
  }
}

/**
 * The server's count of Postgres statements sent for requests (the task store's, better-auth's,
 * the API-key checks'), leaving out the repair timer's poll of the repair table.
 */
async function statementsOf(server) {
  const text = await (await fetchRetrying(`${server.url}/api/metrics`)).text();
  return Number(/^wt_db_statements_total\{origin="request"\} (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** Signs a bench account up on `server`; returns its session cookie. */
async function signUp(server, email) {
  const res = await fetchRetrying(`${server.url}/api/auth/sign-up/email`, {
    method: "POST",
    // Node's fetch sends Sec-Fetch headers, so better-auth wants the Origin a browser would send.
    headers: { "content-type": "application/json", origin: server.url },
    body: JSON.stringify({ name: "bench", email, password: "bench-password-123" }),
  });
  if (!res.ok) throw new Error(`sign-up failed: ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(";")[0]).find((c) => /session_token=./.test(c));
  if (!cookie) throw new Error("sign-up set no session cookie");
  return cookie;
}

async function createKey(server, cookie) {
  const res = await fetchRetrying(`${server.url}/api/keys`, { method: "POST", headers: { cookie, origin: server.url, "content-type": "application/json" }, body: JSON.stringify({ name: "bench" }) });
  if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${await res.text()}`);
  return (await res.json()).key;
}

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

/**
 * `count` Server-Sent Event streams (GET /api/tasks/events), spread over `users`, each its own TCP
 * connection. Resolves once every stream has said `ready`. `firstArrival(user, id)` resolves to
 * when a change of task `id` first reached one of that user's streams (or null after `timeoutMs`).
 */
async function openStreams(server, users, count) {
  const { request } = await import("node:http");
  const arrivals = new Map(); // task id -> first arrival (ms)
  const waiters = new Map(); // task id -> resolve
  let delivered = 0;
  const requests = [];
  const opened = [];
  for (let i = 0; i < count; i++) {
    const user = users[i % users.length];
    opened.push(
      new Promise((resolve, reject) => {
        const req = request(`${server.url}/api/tasks/events`, { headers: { authorization: `Bearer ${user.key}`, accept: "text/event-stream" }, agent: false }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`stream refused: ${res.statusCode}`));
          res.setEncoding("utf8");
          let buffer = "";
          res.on("data", (chunk) => {
            buffer += chunk;
            let end;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              if (block.includes("event: ready")) resolve();
              if (!block.includes("event: change")) continue;
              delivered++;
              const data = block.split("\n").find((l) => l.startsWith("data: "));
              const id = data ? JSON.parse(data.slice(6)).id : undefined;
              if (id !== undefined && !arrivals.has(id)) {
                arrivals.set(id, performance.now());
                waiters.get(id)?.(arrivals.get(id));
              }
            }
          });
        });
        req.on("error", reject);
        req.end();
        requests.push(req);
      }),
    );
  }
  await Promise.all(opened);
  return {
    firstArrival: (_user, id, timeoutMs) =>
      arrivals.has(id)
        ? Promise.resolve(arrivals.get(id))
        : new Promise((resolve) => {
            const timer = setTimeout(() => resolve(null), timeoutMs);
            waiters.set(id, (at) => {
              clearTimeout(timer);
              resolve(at);
            });
          }),
    deliveredTo: () => delivered,
    close: () => requests.forEach((r) => r.destroy()),
  };
}

function peakMemoryMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

async function main() {
  if (build && !dryRun) {
    console.log("building…");
    const b = spawnSync(process.execPath, [path.join(root, "node_modules/next/dist/bin/next"), "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } });
    if (b.status !== 0) throw new Error("next build failed");
  }
  const prefix = `wt_bench_${randomBytes(3).toString("hex")}`;
  const database = await createDatabase(adminUrl, `wt_bench_${randomBytes(4).toString("hex")}`);
  cleanups.push(() => database.drop());
  const redis = new Redis(redisUrl);
  cleanups.push(async () => {
    await deleteKeysMatching(redisUrl, everythingPattern(prefix));
    redis.disconnect();
  });
  if (dryRun) {
    await redis.ping();
    console.log(`dry run: database ${database.name}, key prefix ${prefix}; a re-seed drops ${userCacheKeys(prefix, "someUser").views} and its views; clean-up removes ${everythingPattern(prefix)}`);
    return;
  }
  const deadRedisPort = await freePort();
  const cronSecret = randomBytes(24).toString("base64url");
  const common = {
    DATABASE_URL: database.url,
    DATABASE_POOL_MAX: "10",
    CACHE_PREFIX: prefix,
    BETTER_AUTH_SECRET: randomBytes(32).toString("base64url"),
    CRON_SECRET: cronSecret,
    RATE_LIMIT_DISABLED: "1",
  };
  const cached = await startServer("redis", { ...common, CACHE_DRIVER: "redis", REDIS_URL: redisUrl });
  const direct = await startServer("none", { ...common, CACHE_DRIVER: "none" });
  const deadCache = await startServer("redis unreachable", { ...common, CACHE_DRIVER: "redis", REDIS_URL: `redis://127.0.0.1:${deadRedisPort}` });
  // The same app on a real Redis Cluster (3 masters + 3 replicas, private redis-server processes), when redis-server is here.
  let onCluster = null;
  let noCluster = "redis-server is not installed here";
  try {
    const seeds = await startCluster();
    if (seeds) onCluster = await startServer("redis cluster", { ...common, CACHE_DRIVER: "redis", REDIS_CLUSTER_NODES: seeds });
  } catch (err) {
    // The cluster rows are one scenario among many: the rest of the bench still runs.
    noCluster = `the cluster could not be started: ${err instanceof Error ? err.message : String(err)}`;
  }
  const sql = postgres(database.url, { max: 2, onnotice: () => {} });
  cleanups.unshift(() => sql.end());

  // One account for the load (all servers share the database and so the account): a session
  // cookie for the page-like scenarios, an API key for the program-like ones.
  const email = `bench-${randomBytes(3).toString("hex")}@example.test`;
  const cookie = await signUp(cached, email);
  const key = await createKey(cached, cookie);
  const [{ id: userId }] = await sql`select id from users where email = ${email}`;
  const byKey = { authorization: `Bearer ${key}` };
  const byCookie = { cookie };

  // A third of the tasks done, a quarter with a due date: every view has something to page.
  const seed = async (n, owner = userId) => {
    await sql`delete from tasks where user_id = ${owner}`;
    await sql`insert into tasks (user_id, title, done, due_on)
      select ${owner}, 'benchmark task ' || g, g % 3 = 0, case when g % 4 = 0 then date '2030-01-01' + (g % 365) end from generate_series(1, ${n}) g`;
    const [{ min, max }] = await sql`select min(id)::int as min, max(id)::int as max from tasks where user_id = ${owner}`;
    const keys = userCacheKeys(prefix, owner);
    await redis.del(keys.views, ...keys.viewSets); // rows were written around the cache
    return { min, max };
  };
  const warm = async (server, ids) => {
    for (let id = ids.min; id <= ids.max; id += 1) await fetchRetrying(`${server.url}/api/tasks/${id}`, { headers: byKey });
  };
  const rows = [];
  const results = {};
  // Each server's resident memory as every stage starts: where the memory goes, stage by stage.
  results.rssByStage = [];
  const stage = (name) => {
    console.log(name);
    results.rssByStage.push({ stage: name.replace(/…$/, ""), rssMb: Object.fromEntries(servers.map((s) => [s.name, rssMb(s.pid)])) });
  };
  const row = (scenario, figure, note = "") => rows.push({ scenario, figure, note });

  stage("ceiling…");
  results.ceiling = load(cached, { path: "/api/ping" });
  row("ceiling: trivial route", `${results.ceiling.requestsPerSecond.toFixed(0)} req/s`);

  // The page people load, and the write they make most, beside the empty route in the same rounds
  // (medians of 3 interleaved rounds, so all four share the machine's conditions): a signed-in
  // render of / with 50 tasks, on the cached server and on the no-cache one, and POST /api/tasks.
  stage("the task page and creates, beside the ceiling…");
  const pageEmail = `bench-page-${randomBytes(3).toString("hex")}@example.test`;
  const byPageCookie = { cookie: await signUp(cached, pageEmail) };
  const [{ id: pageUserId }] = await sql`select id from users where email = ${pageEmail}`;
  await seed(50, pageUserId);
  const creatorEmail = `bench-create-${randomBytes(3).toString("hex")}@example.test`;
  const byCreatorKey = { authorization: `Bearer ${await createKey(cached, await signUp(cached, creatorEmail))}` };
  const pageScenarios = {
    ping: [cached, { path: "/api/ping" }],
    pageCached: [cached, { path: "/", headers: byPageCookie, expectStatus: 200 }],
    pageNone: [direct, { path: "/", headers: byPageCookie, expectStatus: 200 }],
    create: [cached, { kind: "create", headers: byCreatorKey, expectStatus: 201 }],
    // The app's lightest page (a signed-out form, no data): what any page costs inside Next.js here.
    signIn: [cached, { path: "/sign-in", expectStatus: 200 }],
  };
  const pageRuns = Object.fromEntries(Object.keys(pageScenarios).map((k) => [k, []]));
  for (const [server, config] of Object.values(pageScenarios)) run(server, { ...config, seconds: quick ? 1 : 3 });
  for (let round = 0; round < 3; round++) {
    const names = Object.keys(pageScenarios);
    for (const name of round % 2 === 0 ? names : names.reverse()) {
      const [server, config] = pageScenarios[name];
      pageRuns[name].push(run(server, config));
    }
  }
  results.page = Object.fromEntries(Object.entries(pageRuns).map(([k, runs]) => [k, medianRun(runs)]));
  for (const [name, r] of Object.entries(results.page)) if (r.errors > 0) throw new Error(`${name}: ${r.errors} requests failed or were not what the scenario expects (status ${pageScenarios[name][1].expectStatus ?? "< 400"})`);
  const pingRate = results.page.ping.requestsPerSecond;
  row("ceiling, in the page rounds", `${pingRate.toFixed(0)} req/s`, "GET /api/ping, medians of 3 rounds interleaved with the four rows below");
  row(
    "GET / signed in, 50 tasks (cached)",
    `${results.page.pageCached.requestsPerSecond.toFixed(0)} req/s`,
    `${target("page ÷ ping", results.page.pageCached.requestsPerSecond / pingRate, ">=", 0.4)}; ${target("cached page ÷ no-cache page", results.page.pageCached.requestsPerSecond / results.page.pageNone.requestsPerSecond, ">=", 1.5)}; p50 ${results.page.pageCached.latency.p50} ms`,
  );
  row(
    "GET /sign-in signed out (the lightest page: Next.js's floor for a page)",
    `${results.page.signIn.requestsPerSecond.toFixed(0)} req/s`,
    `${(results.page.signIn.requestsPerSecond / pingRate).toFixed(2)} × /api/ping; / is ${(results.page.pageCached.requestsPerSecond / results.page.signIn.requestsPerSecond).toFixed(2)} × this`,
  );
  row("GET / signed in, 50 tasks, CACHE_DRIVER=none", `${results.page.pageNone.requestsPerSecond.toFixed(0)} req/s`, `p50 ${results.page.pageNone.latency.p50} ms`);
  row("POST /api/tasks (create, write-through)", `${results.page.create.requestsPerSecond.toFixed(0)} req/s`, `${target("create ÷ ping", results.page.create.requestsPerSecond / pingRate, ">=", 0.75)}; p50 ${results.page.create.latency.p50} ms`);
  results.pageWeight = await pageWeight(cached, byPageCookie);
  row(
    "first-load JavaScript of / (gzip)",
    `${(results.pageWeight.scriptGzipBytes / 1024).toFixed(1)} KiB`,
    `${results.pageWeight.scripts} script files, ${(results.pageWeight.scriptBytes / 1024).toFixed(0)} KiB before gzip; the HTML itself ${(results.pageWeight.htmlGzipBytes / 1024).toFixed(1)} KiB gzip, of which inline scripts (the RSC payload) ${(results.pageWeight.inlineScriptBytes / 1024).toFixed(1)} KiB before gzip (budget: tests/e2e/weight.spec.ts)`,
  );

  stage("GET one task…");
  const hot = await seed(HOT);
  await warm(cached, hot);
  results.getHit = await loadCountingStatements(cached, { kind: "get", ids: hot, headers: byKey });
  results.getHitCookie = await loadCountingStatements(cached, { kind: "get", ids: hot, headers: byCookie });
  results.statementsPerAuthedRead = (results.getHit.statements + results.getHitCookie.statements) / Math.max(1, results.getHit.total + results.getHitCookie.total);
  results.getNone = load(direct, { kind: "get", ids: hot, headers: byKey });
  const hitRatioGet = results.getHit.cache.HIT / Math.max(1, results.getHit.total);
  row("GET one task, cache hit (API key)", `${results.getHit.requestsPerSecond.toFixed(0)} req/s`, `${(hitRatioGet * 100).toFixed(1)} % HIT; ${target("cached GET (API key) ÷ ceiling", results.getHit.requestsPerSecond / results.ceiling.requestsPerSecond, ">=", 0.8)} of the ceiling`);
  row("GET one task, cache hit (session cookie)", `${results.getHitCookie.requestsPerSecond.toFixed(0)} req/s`, `${target("cached GET (cookie) ÷ ceiling", results.getHitCookie.requestsPerSecond / results.ceiling.requestsPerSecond, ">=", 0.8)} of the ceiling`);
  row(
    "Postgres statements per authenticated cached read",
    `${results.getHit.statements + results.getHitCookie.statements} in ${results.getHit.total + results.getHitCookie.total} requests`,
    "API key and cookie, from the server's own statement counter (requests only; the repair timer's 1/s poll is counted apart) (target 0)",
  );
  if (onCluster) {
    stage("GET one task on a Redis Cluster…");
    await warm(onCluster, hot);
    run(onCluster, { kind: "get", ids: hot, headers: byKey, seconds: quick ? 1 : 2 });
    const single = [];
    const clustered = [];
    for (let round = 0; round < 3; round++) {
      const order = round % 2 === 0 ? [[single, cached], [clustered, onCluster]] : [[clustered, onCluster], [single, cached]];
      for (const [runs, server] of order) runs.push(run(server, { kind: "get", ids: hot, headers: byKey }));
    }
    results.getHitCluster = medianRun(clustered);
    results.getHitSingle = medianRun(single);
    row(
      "GET one task, cache hit, on a Redis Cluster (3 masters + 3 replicas)",
      `${results.getHitCluster.requestsPerSecond.toFixed(0)} req/s`,
      `${target("cluster GET ÷ one-Redis GET", results.getHitCluster.requestsPerSecond / results.getHitSingle.requestsPerSecond, ">=", 0.9)} the same on one Redis (${results.getHitSingle.requestsPerSecond.toFixed(0)} req/s), medians of 3 interleaved rounds, ${(100 * results.getHitCluster.cache.HIT / Math.max(1, results.getHitCluster.total)).toFixed(1)} % HIT`,
    );
  } else {
    row("GET one task on a Redis Cluster", "not run", noCluster);
  }
  row("GET one task, CACHE_DRIVER=none", `${results.getNone.requestsPerSecond.toFixed(0)} req/s`, `cached is ${target("cached GET ÷ no-cache GET", results.getHit.requestsPerSecond / results.getNone.requestsPerSecond, ">=", 1.5)} this`);

  stage("mixed 90/10…");
  results.mixed = load(cached, { kind: "get", ids: hot, writeRatio: 0.1, seconds: MIXED_SECONDS, headers: byKey });
  const reads = results.mixed.cache.HIT + results.mixed.cache.MISS + results.mixed.cache.BYPASS;
  results.mixed.hitRatio = results.mixed.cache.HIT / Math.max(1, reads);
  row(`mixed 90 % GET / 10 % PATCH on ${HOT} hot tasks, ${MIXED_SECONDS} s`, `${results.mixed.requestsPerSecond.toFixed(0)} req/s`, `hit ratio ${target("mixed hit ratio", results.mixed.hitRatio, ">=", 0.99, { unit: "", digits: 4 })}`);

  stage("writes…");
  results.writeCached = load(cached, { kind: "patch", ids: hot, connections: 8, headers: byKey });
  results.writeNone = load(direct, { kind: "patch", ids: hot, connections: 8, headers: byKey });
  row("PATCH, write-through", `p50 ${results.writeCached.latency.p50} ms, p99 ${results.writeCached.latency.p99} ms`, `p50 ${target("write-through PATCH p50 ÷ no-cache p50", results.writeCached.latency.p50 / results.writeNone.latency.p50, "<=", 1.3)} none`);
  row("PATCH, CACHE_DRIVER=none", `p50 ${results.writeNone.latency.p50} ms, p99 ${results.writeNone.latency.p99} ms`);

  stage("reads with Redis unreachable…");
  results.readsDead = load(deadCache, { kind: "get", ids: hot, headers: byKey });
  results.readsNone = load(direct, { kind: "get", ids: hot, headers: byKey });
  row("GET one task, Redis unreachable (breaker open)", `p99 ${results.readsDead.latency.p99} ms, ${results.readsDead.requestsPerSecond.toFixed(0)} req/s`, `p99 ${target("breaker-open GET p99 ÷ no-cache p99", results.readsDead.latency.p99 / results.readsNone.latency.p99, "<=", 1.5)} none's ${results.readsNone.latency.p99} ms`);

  // CPU starvation: hog processes on every core beside the server (load ≈ 2 × cores plus the server,
  // the load generator, Postgres and Redis), while Redis itself is healthy. A timeout that counted
  // the time the server waited for a CPU would fire and open the breaker, sending reads to
  // Postgres; one that counts only time the event loop was free must not (docs/decisions/017).
  stage("reads with CPU hogs beside the server…");
  const breakerCounts = async () => {
    const text = await (await fetchRetrying(`${cached.url}/api/metrics`)).text();
    const count = (name, breaker) => Number(new RegExp(`^${name}\\{breaker="${breaker}"\\} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
    return { cacheTimeouts: count("wt_breaker_timeouts_total", "cache"), cacheOpenings: count("wt_breaker_openings_total", "cache"), dbTimeouts: count("wt_breaker_timeouts_total", "db"), dbOpenings: count("wt_breaker_openings_total", "db") };
  };
  const hogs = (await import("node:os")).cpus().length * 2;
  const countsBefore = await breakerCounts();
  const hogProcesses = Array.from({ length: hogs }, () => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  cleanups.unshift(async () => hogProcesses.forEach((h) => h.kill("SIGKILL")));
  let loadAverage = 0;
  try {
    await sleep(1000);
    results.starved = await loadAsync(cached, { kind: "get", ids: hot, headers: byKey });
    loadAverage = (await import("node:os")).loadavg()[0];
  } finally {
    hogProcesses.forEach((h) => h.kill("SIGKILL"));
  }
  const countsAfter = await breakerCounts();
  results.starved.hogs = hogs;
  results.starved.loadAverage = Number(loadAverage.toFixed(1));
  results.starved.breaker = Object.fromEntries(Object.keys(countsAfter).map((k) => [k, countsAfter[k] - countsBefore[k]]));
  const starvedHit = results.starved.cache.HIT / Math.max(1, results.starved.total);
  row(
    `GET one task with ${hogs} CPU hogs beside the server (1-min load ${results.starved.loadAverage})`,
    `${target("cache breaker openings under CPU starvation", results.starved.breaker.cacheOpenings, "<=", 0, { unit: "", digits: 0 })} cache breaker openings`,
    `${results.starved.breaker.cacheTimeouts} cache timeouts, ${results.starved.breaker.dbOpenings} database breaker openings; ${results.starved.requestsPerSecond.toFixed(0)} req/s, p99 ${results.starved.latency.p99} ms, ${(100 * starvedHit).toFixed(1)} % HIT (a Redis that is slow itself still opens it: tests/faults/redisFaults.test.ts, tests/cache/redis.test.ts)`,
  );

  results.lists = {};
  for (const n of LIST_SIZES) {
    stage(`list of ${n}…`);
    await seed(n);
    await fetchRetrying(`${cached.url}/api/tasks?limit=50`, { headers: byKey }); // cold build of the views
    results.lists[n] = load(cached, { path: "/api/tasks?limit=50", headers: byKey });
    row(`first list page (50) of ${n.toLocaleString("en")} tasks`, `${results.lists[n].requestsPerSecond.toFixed(0)} req/s`, `${(100 * results.lists[n].cache.HIT / Math.max(1, results.lists[n].total)).toFixed(1)} % HIT`);
  }
  const last = LIST_SIZES[LIST_SIZES.length - 1];
  row("list page at 100,000 vs at 100", target("list page at 100,000 ÷ at 100", results.lists[last].requestsPerSecond / results.lists[100].requestsPerSecond, ">=", 0.8));

  // Each view's first page (and the counts every page carries), from its own written-through index,
  // for a user with 100 tasks and one with 100,000 at the same time, in interleaved rounds (medians
  // of 3), so both sides run under the same conditions: measured one after the other, the 100,000
  // side ran right after 100,000 rows were inserted (Postgres vacuuming and checkpointing on the
  // same two cores), and the 100 side's "done" page held 33 tasks against 50.
  stage("views at 100 and at 100,000, interleaved…");
  const smallEmail = `bench-small-${randomBytes(3).toString("hex")}@example.test`;
  const smallKey = await createKey(cached, await signUp(cached, smallEmail));
  const [{ id: smallUserId }] = await sql`select id from users where email = ${smallEmail}`;
  await seed(100, smallUserId);
  await sql`vacuum analyze tasks`;
  const bySmallKey = { authorization: `Bearer ${smallKey}` };
  const VIEWS = { open: "status=open", done: "status=done", due: "sort=due", "counts only": "limit=1" };
  // Pages of 25: full on both sides (100 tasks have only 33 done), so both answer the same amount.
  const VIEW_PAGE = 25;
  const viewPath = (query) => `/api/tasks?${query.startsWith("limit") ? query : `${query}&limit=${VIEW_PAGE}`}`;
  const sides = { 100: bySmallKey, [last]: byKey };
  const samples = {};
  for (const [name, query] of Object.entries(VIEWS)) {
    samples[name] = { 100: [], [last]: [] };
    for (const headers of Object.values(sides)) run(cached, { path: viewPath(query), headers, seconds: quick ? 1 : 2 }); // builds and warms both
  }
  const VIEW_ROUNDS = 3;
  for (let round = 0; round < VIEW_ROUNDS; round++) {
    for (const [name, query] of Object.entries(VIEWS)) {
      const order = round % 2 === 0 ? [100, last] : [last, 100];
      for (const n of order) samples[name][n].push(run(cached, { path: viewPath(query), headers: sides[n] }));
    }
  }
  results.views = { 100: {}, [last]: {} };
  for (const name of Object.keys(VIEWS)) {
    const [small, big] = [medianRun(samples[name][100]), medianRun(samples[name][last])];
    results.views[100][name] = small;
    results.views[last][name] = big;
    row(
      `${name === "counts only" ? "counts (a page of 1)" : `${name} view, first page (${VIEW_PAGE})`} at 100,000 vs at 100`,
      target(`${name} at 100,000 ÷ at 100`, big.requestsPerSecond / small.requestsPerSecond, ">=", 0.8),
      `medians of ${VIEW_ROUNDS} interleaved rounds: ${big.requestsPerSecond.toFixed(0)} vs ${small.requestsPerSecond.toFixed(0)} req/s, ${(100 * big.cache.HIT / Math.max(1, big.total)).toFixed(1)} % HIT`,
    );
  }

  // A batch of 500: one Postgres transaction and one cache script call, read off the server's own counters.
  stage("batch of 500…");
  const counters = async () => {
    const text = await (await fetchRetrying(`${cached.url}/api/metrics`)).text();
    const count = (re) => Number(re.exec(text)?.[1] ?? 0);
    return {
      transactions: count(/^wt_db_transactions_total (\d+)/m),
      scripts: count(/^wt_cache_calls_total\{operation="writeTasks",outcome="ok"\} (\d+)/m),
      statements: count(/^wt_db_statements_total\{origin="request"\} (\d+)/m),
    };
  };
  const batchIds = (await sql`select id from tasks where user_id = ${userId} and not done order by id limit 500`).map((r) => r.id);
  const before = await counters();
  const batchStarted = performance.now();
  const batchRes = await fetchRetrying(`${cached.url}/api/tasks/batch`, {
    method: "POST",
    headers: { ...byKey, "content-type": "application/json" },
    body: JSON.stringify({ op: "complete", ids: batchIds }),
  });
  const batchMs = performance.now() - batchStarted;
  if (batchRes.status !== 200) throw new Error(`batch failed: ${batchRes.status} ${await batchRes.text()}`);
  const after = await counters();
  results.batch = { ids: batchIds.length, ms: Math.round(batchMs), transactions: after.transactions - before.transactions, scripts: after.scripts - before.scripts, statements: after.statements - before.statements };
  row(
    `batch complete of ${batchIds.length} tasks`,
    `${results.batch.ms} ms`,
    `${results.batch.transactions} Postgres transaction(s) (${results.batch.statements} statements, API-key check included), ${results.batch.scripts} cache script call(s) (target 1 and 1)`,
  );

  stage("caching all 100,000 tasks…");
  const usedBefore = Number(/used_memory:(\d+)/.exec(await redis.info("memory"))?.[1] ?? 0);
  let cursor = null;
  do {
    const res = await fetchRetrying(`${cached.url}/api/tasks?limit=200${cursor ? `&cursor=${cursor}` : ""}`, { headers: byKey });
    cursor = (await res.json()).nextCursor;
  } while (cursor);
  const usedAfter = Number(/used_memory:(\d+)/.exec(await redis.info("memory"))?.[1] ?? 0);
  results.memory = { serverPeakMb: peakMemoryMb(cached.pid), redisGrowthMb: Math.round((usedAfter - usedBefore) / 1048576) };
  row("server peak memory, 100,000 tasks cached", `${results.memory.serverPeakMb} MB`, `Redis grew by ${results.memory.redisGrowthMb} MB for them`);

  // The whole-store audit walks every cached entry (100,000 here) in bounded batches; requests
  // running beside it should keep their latency.
  stage("whole-store audit under load…");
  const [span] = await sql`select min(id)::int as min, max(id)::int as max from tasks where user_id = ${userId}`;
  results.auditBaseline = await loadAsync(cached, { kind: "get", ids: span, headers: byKey });
  let auditing = true;
  const auditTimes = [];
  const auditLoop = (async () => {
    while (auditing) {
      const started = Date.now();
      const res = await fetchRetrying(`${cached.url}/api/cache/audit?scope=all`, { headers: { authorization: `Bearer ${cronSecret}` } });
      const report = await res.json();
      if (res.status !== 200) throw new Error(`audit failed: ${res.status} ${JSON.stringify(report)}`);
      auditTimes.push({ ms: Date.now() - started, checked: report.checked });
    }
  })();
  results.auditUnderLoad = await loadAsync(cached, { kind: "get", ids: span, headers: byKey });
  auditing = false;
  await auditLoop;
  results.audits = auditTimes;
  const lastAudit = auditTimes[auditTimes.length - 1];
  row(
    "GET one task while the whole-store audit runs",
    `p99 ${results.auditUnderLoad.latency.p99} ms`,
    `${target("GET p99 during audit ÷ without", results.auditUnderLoad.latency.p99 / results.auditBaseline.latency.p99, "<=", 2)} the p99 without it (${results.auditBaseline.latency.p99} ms); ${auditTimes.length} audit(s) ran, ${lastAudit ? `${lastAudit.checked.toLocaleString("en")} entries in ${lastAudit.ms} ms` : "none finished"}`,
  );

  // One user's page among many users: the same 100 tasks, alone and then beside 999 other users
  // with 100 tasks each (written around the cache), so any cost that grows with other users shows.
  stage("one user among 1,000…");
  await sql`delete from tasks`;
  await seed(100);
  await fetchRetrying(`${cached.url}/api/tasks?limit=50`, { headers: byKey });
  results.listAlone = load(cached, { path: "/api/tasks?limit=50", headers: byKey });
  const crowd = quick ? 99 : 999;
  await sql`insert into users (id, name, email) select 'benchcrowd' || g, 'crowd', 'crowd' || g || '@example.test' from generate_series(1, ${crowd}) g`;
  await sql`insert into tasks (user_id, title) select 'benchcrowd' || u, 'crowd task ' || t from generate_series(1, ${crowd}) u, generate_series(1, 100) t`;
  await sql`analyze tasks`;
  results.listAmongMany = load(cached, { path: "/api/tasks?limit=50", headers: byKey });
  row(
    `list page (50 of 100) for one user among ${(crowd + 1).toLocaleString("en")} users × 100 tasks`,
    `${results.listAmongMany.requestsPerSecond.toFixed(0)} req/s`,
    `${target("list page among 1,000 users ÷ alone", results.listAmongMany.requestsPerSecond / results.listAlone.requestsPerSecond, ">=", 0.8)} the same page with 1 user`,
  );
  await sql`delete from tasks where user_id like 'benchcrowd%'`;
  await sql`delete from users where id like 'benchcrowd%'`;

  // Live updates: many event streams open on one instance, writes made on another; how much the
  // streams cost the server's memory, and how long a change takes from the writer's answer to a
  // stream on the other instance.
  stage("live updates across two instances…");
  const writer = await startServer("redis (second instance)", { ...common, CACHE_DRIVER: "redis", REDIS_URL: redisUrl });
  const STREAM_USERS = quick ? 10 : 50;
  const STREAMS = quick ? 200 : 1000;
  const liveUsers = [];
  for (let i = 0; i < STREAM_USERS; i++) {
    const c = await signUp(cached, `bench-live-${i}-${randomBytes(3).toString("hex")}@example.test`);
    liveUsers.push({ key: await createKey(cached, c) });
  }
  const rssBefore = rssMb(cached.pid);
  const streams = await openStreams(cached, liveUsers, STREAMS);
  await sleep(1000);
  const rssOpen = rssMb(cached.pid);
  const WRITES = quick ? 50 : 200;
  const delays = [];
  for (let i = 0; i < WRITES; i++) {
    const user = liveUsers[i % liveUsers.length];
    const res = await fetchRetrying(`${writer.url}/api/tasks`, { method: "POST", headers: { authorization: `Bearer ${user.key}`, "content-type": "application/json" }, body: JSON.stringify({ title: `live ${i}` }) });
    const acked = performance.now();
    const { id } = await res.json();
    // Received by the first stream of that user (every stream of the user gets it; one is timed).
    const receivedAt = await streams.firstArrival(user, id, 5_000);
    delays.push(receivedAt === null ? Infinity : Math.max(0, receivedAt - acked));
  }
  await sleep(500);
  const rssAfter = rssMb(cached.pid);
  const delivered = streams.deliveredTo();
  streams.close();
  delays.sort((a, b) => a - b);
  const pct = (q) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))];
  results.live = {
    streams: STREAMS,
    users: STREAM_USERS,
    rssBeforeMb: rssBefore,
    rssWithStreamsMb: rssOpen,
    rssAfterWritesMb: rssAfter,
    writes: WRITES,
    lost: delays.filter((d) => d === Infinity).length,
    deliveredEvents: delivered,
    expectedEvents: WRITES * (STREAMS / STREAM_USERS),
    p50Ms: Number(pct(0.5).toFixed(1)),
    p99Ms: Number(pct(0.99).toFixed(1)),
  };
  row(
    `${STREAMS.toLocaleString("en")} event streams (${STREAM_USERS} users) open on one instance`,
    `${signed(Math.max(rssOpen, rssAfter) - rssBefore)} MB RSS`,
    `server RSS ${rssBefore} → ${rssOpen} MB with the streams open, ${rssAfter} MB after ${WRITES} writes fanned out to ${delivered.toLocaleString("en")} of ${results.live.expectedEvents.toLocaleString("en")} stream events; growth ${target("RSS growth with the streams (MB)", Math.max(rssOpen, rssAfter) - rssBefore, "<=", 150, { unit: " MB", digits: 0 })}`,
  );
  row(
    "live update: write answered on instance B → event on a stream of instance A",
    `p50 ${results.live.p50Ms} ms, p99 ${results.live.p99Ms} ms`,
    `${WRITES} creates, ${results.live.lost} lost (an event that arrives before the writer's answer counts as 0 ms); p99 ${target("live update p99 (ms)", results.live.p99Ms, "<=", 250, { unit: " ms", digits: 1 })}`,
  );

  // Peak resident memory of every server over its whole life in this bench (VmHWM).
  results.peakRssMb = Object.fromEntries(servers.map((s) => [s.name, peakMemoryMb(s.pid)]));
  const worst = Math.max(...Object.values(results.peakRssMb));
  row(
    "peak RSS per server over the whole bench",
    `${worst} MB (highest)`,
    `${target("peak RSS per server (MB)", worst, "<=", 400, { unit: " MB", digits: 0 })}: ${Object.entries(results.peakRssMb).map(([n, mb]) => `${n} ${mb} MB`).join(", ")}`,
  );
  results.targets = targets;

  const table = ["| scenario | result | notes |", "|---|---|---|", ...rows.map((r) => `| ${r.scenario} | ${r.figure} | ${r.note} |`)].join("\n");
  stage("end of the bench…");
  console.log(`\n${table}\n`);
  mkdirSync(path.join(root, "bench/results"), { recursive: true });
  const out = { date: new Date().toISOString(), quick, seconds: SECONDS, node: process.version, cores: (await import("node:os")).cpus().length, results, table };
  writeFileSync(path.join(root, "bench/results/latest.json"), `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote bench/results/latest.json");
}

/** Every figure that has a target, as written to latest.json: name, value, target, met. */
const targets = [];

/**
 * Records a figure against its target (written to latest.json as `targets`); returns it for the
 * table, e.g. "0.42 × (target ≥ 0.4)", with "NOT MET" when it isn't.
 */
function target(name, value, op, bound, { unit = " ×", digits = 2 } = {}) {
  const met = op === ">=" ? value >= bound : value <= bound;
  const sign = op === ">=" ? "≥" : "≤";
  targets.push({ name, value: Number(value.toFixed(4)), target: `${sign} ${bound}`, met });
  return `${value.toFixed(digits)}${unit} (target ${sign} ${bound}${met ? "" : ", NOT MET"})`;
}

/**
 * What a browser downloads for a signed-in `/`: the HTML (gzip), and every script file it names
 * (but the noModule polyfills), each gzipped as a server would send it (zlib's default level).
 * tests/e2e/weight.spec.ts holds the same figure to a budget.
 */
async function pageWeight(server, headers) {
  const { gzipSync } = await import("node:zlib");
  const html = await (await fetchRetrying(`${server.url}/`, { headers })).text();
  // The noModule polyfills are fetched only by browsers without ES modules: not counted.
  const srcs = [...new Set([...html.matchAll(/<script([^>]*)\ssrc="([^"]+)"([^>]*)>/g)].filter((m) => !/nomodule/i.test(m[1] + m[3])).map((m) => m[2]))];
  let scriptBytes = 0;
  let scriptGzipBytes = 0;
  for (const src of srcs) {
    const body = Buffer.from(await (await fetchRetrying(new URL(src, server.url))).arrayBuffer());
    scriptBytes += body.length;
    scriptGzipBytes += gzipSync(body).length;
  }
  const inlineScriptBytes = [...html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>([\s\S]*?)<\/script>/g)].reduce((n, m) => n + Buffer.byteLength(m[1]), 0);
  return { scripts: srcs.length, scriptBytes, scriptGzipBytes, htmlBytes: Buffer.byteLength(html), htmlGzipBytes: gzipSync(html).length, inlineScriptBytes };
}

/** The run with the median throughput. */
function medianRun(runs) {
  return [...runs].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[Math.floor(runs.length / 2)];
}

function signed(n) {
  return n > 0 ? `+${n}` : n < 0 ? `−${-n}` : "±0";
}

let code = 0;
try {
  await main();
} catch (err) {
  // Node's fetch says only "fetch failed"; the reason (refused, reset, closed) is its cause.
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}${cause}`);
  if (process.env.BENCH_DEBUG && err instanceof Error) console.error(err.stack);
  code = 1;
} finally {
  for (const s of servers) s.child.kill("SIGTERM");
  for (const c of cleanups) await Promise.resolve().then(c).catch(() => {});
}
process.exit(code);
