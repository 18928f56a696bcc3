#!/usr/bin/env node
// `npm test`: lint, typecheck, integration tests against real Postgres and Redis, a production
// build, and the Playwright e2e tests in Chromium. Finds Postgres and Redis (TEST_DATABASE_URL /
// TEST_REDIS_URL, else the local defaults), starts private ones when the binaries exist, or stops
// with one line saying what to start. Ends with "N passed, N failed" over every runner.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const bin = (name) => path.join(root, "node_modules", ".bin", name);
const cleanups = [];
// Steps to run (e.g. `npm test -- unit e2e`), and test files to run them on (e.g.
// `npm test -- unit tests/faults/redisFaults.test.ts`, `npm test -- e2e tests/e2e/accounts.spec.ts`).
const args = process.argv.slice(2);
const isFile = (arg) => arg.includes("/") || /\.(test|spec)\.ts$/.test(arg);
const only = new Set(args.filter((a) => !isFile(a)));
const vitestFiles = args.filter((a) => isFile(a) && !/\.spec\.ts$/.test(a));
const e2eFiles = args.filter((a) => isFile(a) && /\.spec\.ts$/.test(a));
const wants = (step) => only.size === 0 || only.has(step);
// Every database and key prefix this run makes carries it (tests/support/services.ts uniqueName()),
// so the run can check at the end that it left none behind on the shared servers.
const runId = randomBytes(4).toString("hex");

function log(msg) {
  console.log(`\n▶ ${msg}`);
}

function canConnect(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function waitFor(check, what, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

function which(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).stdout.trim() || null;
}

async function findRedis() {
  const url = process.env.TEST_REDIS_URL || "redis://127.0.0.1:6379";
  const u = new URL(url);
  if (await canConnect(u.hostname, Number(u.port || 6379))) return url;
  if (process.env.TEST_REDIS_URL) throw new Error(`Redis at TEST_REDIS_URL=${url} is not reachable; start it or unset TEST_REDIS_URL.`);
  const server = which("redis-server");
  if (!server) throw new Error("No Redis at 127.0.0.1:6379 and no redis-server to start: start Redis (e.g. `docker compose up -d redis`) or set TEST_REDIS_URL.");
  const port = await freePort();
  const child = spawn(server, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  cleanups.push(() => child.kill("SIGTERM"));
  await waitFor(() => canConnect("127.0.0.1", port), "redis-server");
  console.log(`started a private redis-server on port ${port}`);
  return `redis://127.0.0.1:${port}`;
}

async function findPostgres() {
  const url = process.env.TEST_DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
  const u = new URL(url);
  if (await canConnect(u.hostname, Number(u.port || 5432))) return url;
  if (process.env.TEST_DATABASE_URL) throw new Error(`Postgres at TEST_DATABASE_URL=${url} is not reachable; start it or unset TEST_DATABASE_URL.`);
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort() : [];
  const pgBin = versions.length ? `/usr/lib/postgresql/${versions[versions.length - 1]}/bin` : null;
  const initdb = pgBin && existsSync(`${pgBin}/initdb`) ? `${pgBin}/initdb` : which("initdb");
  if (!initdb) throw new Error("No Postgres at 127.0.0.1:5432 and no initdb to start one: start Postgres (e.g. `docker compose up -d postgres`) or set TEST_DATABASE_URL.");
  const pgCtl = path.join(path.dirname(initdb), "pg_ctl");
  const dir = mkdtempSync(path.join(os.tmpdir(), "wtt-pg-"));
  const port = await freePort();
  // initdb refuses to run as root: run the cluster as the postgres user when we are root.
  const asUser = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  if (asUser.length) spawnSync("chown", ["postgres", dir]);
  const run = (args) => {
    const r = spawnSync(asUser[0] ?? args[0], asUser.length ? [...asUser.slice(1), ...args] : args.slice(1), { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${args[0]} failed: ${r.stderr || r.stdout}`);
  };
  run([initdb, "-D", `${dir}/data`, "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
  run([pgCtl, "-D", `${dir}/data`, "-l", `${dir}/log`, "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, "-w", "start"]);
  cleanups.push(() => {
    try {
      run([pgCtl, "-D", `${dir}/data`, "-m", "immediate", "stop"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  console.log(`started a private Postgres on port ${port}`);
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

function run(name, cmd, args, env = {}) {
  log(`${name}: ${[path.basename(cmd), ...args].join(" ")}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  const ok = r.status === 0;
  console.log(`${ok ? "✔" : "✘"} ${name} ${ok ? "passed" : `failed (exit ${r.status ?? r.signal})`} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return ok;
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(path.join(root, file), "utf8"));
  } catch {
    return null;
  }
}

async function withDatabase(adminUrl, fn) {
  const { default: postgres } = await import("postgres");
  const name = `wtt_e2e_${runId}_${randomBytes(4).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    await admin.unsafe(`drop database if exists "${name}" with (force)`).catch(() => {});
    await admin.end();
  }
}

/** Unlinks every key matching `pattern` (SCAN, never FLUSHDB: the Redis may be shared); returns how many. */
async function deleteKeysMatching(redisUrl, pattern) {
  const { Redis } = await import("ioredis");
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/**
 * What this run left on the test servers: keys and databases whose names carry its run id. Each
 * test removes what it made, so this should find nothing; what it finds is reported, then removed.
 */
async function leftovers(databaseUrl, redisUrl) {
  const found = [];
  if (redisUrl) {
    const keys = await deleteKeysMatching(redisUrl, `*_${runId}_*`);
    if (keys > 0) found.push(`${keys} Redis key(s) matching *_${runId}_*`);
  }
  if (databaseUrl) {
    const { default: postgres } = await import("postgres");
    const admin = postgres(databaseUrl, { max: 1, onnotice: () => {} });
    try {
      const rows = await admin`select datname from pg_database where strpos(datname, ${`_${runId}_`}) > 0`;
      for (const { datname } of rows) {
        found.push(`database ${datname}`);
        await admin.unsafe(`drop database if exists "${datname}" with (force)`);
      }
    } finally {
      await admin.end();
    }
  }
  return found;
}

/** Failed vitest tests, plus suites that failed on their own: a file that would not import, a hook that threw. */
function vitestFailures(report) {
  // A suite (file or describe) also fails when a test in it fails: those are counted once, as the test.
  const explained = new Set();
  for (const file of report.testResults ?? []) {
    for (const t of file.assertionResults ?? []) {
      if (t.status !== "failed") continue;
      explained.add(file.name);
      t.ancestorTitles.forEach((_, i) => explained.add([file.name, ...t.ancestorTitles.slice(0, i + 1)].join("\0")));
    }
  }
  return report.numFailedTests + Math.max(0, report.numFailedTestSuites - explained.size);
}

async function main() {
  const results = { steps: [], passed: 0, failed: 0, skipped: 0 };
  const step = (name, ok) => results.steps.push({ name, ok });

  if (wants("lint")) step("lint", run("lint", bin("eslint"), ["--max-warnings=0", "."]));
  if (wants("typecheck")) step("typecheck", run("typecheck", bin("tsc"), ["--noEmit"]));

  let databaseUrl;
  let redisUrl;
  if (wants("unit") || wants("e2e")) {
    log("services");
    [databaseUrl, redisUrl] = await Promise.all([findPostgres(), findRedis()]);
    console.log(`Postgres: ${databaseUrl}\nRedis:    ${redisUrl}`);
  }
  const serviceEnv = { TEST_DATABASE_URL: databaseUrl, TEST_REDIS_URL: redisUrl, TEST_RUN_ID: runId };

  if (wants("unit")) {
    rmSync(path.join(root, "test-results/vitest.json"), { force: true });
    const ok = run(
      "vitest",
      bin("vitest"),
      ["run", "--allowOnly=false", "--reporter=default", "--reporter=json", "--outputFile.json=test-results/vitest.json", ...vitestFiles],
      serviceEnv,
    );
    const report = readJson("test-results/vitest.json");
    if (report) {
      const failed = vitestFailures(report);
      results.passed += report.numPassedTests;
      results.failed += failed;
      results.skipped += report.numPendingTests + report.numTodoTests;
      console.log(`vitest: ${report.numPassedTests} passed, ${failed} failed (${failed - report.numFailedTests} of them whole files or suites), ${report.numPendingTests} skipped`);
    } else {
      results.failed += 1; // it ended without a report: nothing it ran can be counted as passing
      console.log("vitest: no report (test-results/vitest.json), counted as 1 failure");
    }
    step("vitest", ok && report !== null);
  }

  if (wants("e2e")) {
    const built = run("build", process.execPath, [path.join(root, "node_modules/next/dist/bin/next"), "build"], { NEXT_TELEMETRY_DISABLED: "1" });
    step("build", built);
    if (built) {
      rmSync(path.join(root, "test-results/e2e.json"), { force: true });
      const port = await freePort();
      const cachePrefix = `wtt_e2e_${runId}_${randomBytes(3).toString("hex")}`;
      const ok = await withDatabase(databaseUrl, (url) =>
        run("playwright", bin("playwright"), ["test", ...e2eFiles], {
          E2E_PORT: String(port),
          DATABASE_URL: url,
          REDIS_URL: redisUrl,
          CACHE_PREFIX: cachePrefix,
          BETTER_AUTH_SECRET: randomBytes(32).toString("base64url"),
          // Every story signs a fresh person up from 127.0.0.1; the limit itself is tested in
          // tests/integration/rateLimit.test.ts.
          RATE_LIMIT_SIGN_UPS_PER_IP: "1000/1h",
          NEXT_TELEMETRY_DISABLED: "1",
        }),
      );
      // The app server has stopped with Playwright: its cache keys go with the run.
      const removed = await deleteKeysMatching(redisUrl, `${cachePrefix}:*`);
      console.log(`removed the e2e run's ${removed} Redis key(s) under ${cachePrefix}`);
      const report = readJson("test-results/e2e.json");
      if (report?.stats) {
        const { expected = 0, unexpected = 0, flaky = 0, skipped = 0 } = report.stats;
        // Errors outside any test (a spec that would not load, a failing web server) fail the run too.
        const errors = report.errors?.length ?? 0;
        results.passed += expected;
        results.failed += unexpected + flaky + errors;
        results.skipped += skipped;
        console.log(`playwright: ${expected} passed, ${unexpected + flaky + errors} failed (${errors} errors outside tests), ${skipped} skipped`);
      } else {
        results.failed += 1;
        console.log("playwright: no report (test-results/e2e.json), counted as 1 failure");
      }
      step("playwright", ok && report?.stats !== undefined);
    }
  }

  if (databaseUrl || redisUrl) {
    log("leftovers");
    const found = await leftovers(databaseUrl, redisUrl);
    for (const f of found) console.log(`  left behind, now removed: ${f}`);
    console.log(found.length === 0 ? `nothing left behind with run id ${runId}` : `✘ the run left ${found.length} thing(s) behind`);
    if (found.length > 0) results.failed += 1;
    step("nothing left behind", found.length === 0);
  }

  console.log("\nSummary");
  for (const s of results.steps) console.log(`  ${s.ok ? "✔" : "✘"} ${s.name}`);
  const allOk = results.steps.every((s) => s.ok) && results.failed === 0 && results.skipped === 0;
  if (results.skipped > 0) console.log(`  ✘ ${results.skipped} skipped test(s): a skipped test is not a passing one`);
  console.log(`${results.passed} passed, ${results.failed} failed${results.skipped ? `, ${results.skipped} skipped` : ""}`);
  return allOk ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`npm test: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  for (const cleanup of cleanups.reverse()) {
    try {
      cleanup();
    } catch {
      // best effort
    }
  }
}
process.exit(code);
