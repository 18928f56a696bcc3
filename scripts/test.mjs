#!/usr/bin/env node
// `npm test`: lint, typecheck, the Vitest tests (unit, then integration against real Postgres and
// Redis), a production build, and the Playwright e2e tests in Chromium. Finds Postgres and Redis
// (TEST_DATABASE_URL / TEST_REDIS_URL, else the local defaults), starts private ones when the
// binaries exist, or stops with one line saying what to start. Ends with "N passed, N failed" over
// every runner. `npm run validate` (--validate) runs the same steps in three phases, each waiting
// for the one before: lint ‖ typecheck ‖ unit tests, then integration tests, then build and e2e.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { canConnect, createDatabase, deleteKeysMatching, dropDatabase, freePort, listDatabasesContaining } from "./lib/services.mjs";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const bin = (name) => path.join(root, "node_modules", ".bin", name);
const cleanups = [];

// Steps to run (e.g. `npm test -- lint unit`), and test files to run them on (e.g.
// `npm test -- unit tests/faults/redisFaults.test.ts`, `npm test -- e2e tests/e2e/accounts.spec.ts`).
// `unit` is tests/unit (no services), `integration` every other Vitest file, `vitest` both.
const STEPS = ["lint", "typecheck", "unit", "integration", "vitest", "e2e"];
const args = process.argv.slice(2);
const validate = args.includes("--validate");
const positional = args.filter((a) => !a.startsWith("--"));
const isFile = (arg) => arg.includes("/") || /\.(test|spec)\.ts$/.test(arg);
const only = new Set(positional.filter((a) => !isFile(a)));
const vitestFiles = positional.filter((a) => isFile(a) && !/\.spec\.ts$/.test(a));
const e2eFiles = positional.filter((a) => isFile(a) && /\.spec\.ts$/.test(a));
const wants = (step) => only.size === 0 || only.has(step);
// Every database and key prefix this run makes carries it (tests/support/services.ts uniqueName()),
// so the run can check at the end that it left none behind on the shared servers.
const runId = randomBytes(4).toString("hex");
// Outside test-results/, which Playwright empties when it starts.
const E2E_SERVER_LOG = path.join(os.tmpdir(), `wtt-e2e-server-${runId}.log`);

function log(msg) {
  console.log(`\n▶ ${msg}`);
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

/**
 * Runs one step. `output`: "live" streams it (a step running alone); "buffered" prints it in one
 * block when the step ends (steps running side by side); "on-failure" prints it only if it fails.
 */
function run(name, cmd, args, { env = {}, output = "live" } = {}) {
  if (output !== "buffered") log(`${name}: ${[path.basename(cmd), ...args].join(" ")}${output === "on-failure" ? " (its output is shown if it fails)" : ""}`);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: output === "live" ? "inherit" : ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    const chunks = [];
    child.stdout?.on("data", (d) => chunks.push(d));
    child.stderr?.on("data", (d) => chunks.push(d));
    const finish = (code, signal) => {
      const ok = code === 0;
      const text = Buffer.concat(chunks).toString("utf8");
      if (output === "buffered" || (output === "on-failure" && !ok)) {
        if (output === "buffered") log(`${name}: ${[path.basename(cmd), ...args].join(" ")}`);
        if (text) process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
      }
      console.log(`${ok ? "✔" : "✘"} ${name} ${ok ? "passed" : `failed (exit ${code ?? signal})`} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      resolve(ok);
    };
    child.once("error", (err) => {
      chunks.push(Buffer.from(`${err.message}\n`));
      finish(null, "spawn error");
    });
    child.once("close", finish);
  });
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(path.join(root, file), "utf8"));
  } catch {
    return null;
  }
}

async function withDatabase(adminUrl, fn) {
  const database = await createDatabase(adminUrl, `wtt_e2e_${runId}_${randomBytes(4).toString("hex")}`);
  try {
    return await fn(database.url);
  } finally {
    await database.drop().catch((err) => console.log(`could not drop ${database.name}: ${err.message}`));
  }
}

/**
 * What this run left on the test servers: keys and databases whose names carry its run id. Each
 * test removes what it made, so this should find nothing; what it finds is reported, then removed.
 * A check that could not be made is reported too: it counts as something left.
 */
async function leftovers(databaseUrl, redisUrl) {
  const marker = `_${runId}_`;
  const found = [];
  if (redisUrl) {
    try {
      const keys = await deleteKeysMatching(redisUrl, `*${marker}*`);
      if (keys > 0) found.push(`${keys} Redis key(s) matching *${marker}*`);
    } catch (err) {
      found.push(`Redis could not be checked: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (databaseUrl) {
    try {
      for (const name of await listDatabasesContaining(databaseUrl, marker)) {
        found.push(`database ${name}`);
        await dropDatabase(databaseUrl, name).catch((err) => found.push(`database ${name} could not be dropped: ${err.message}`));
      }
    } catch (err) {
      found.push(`Postgres could not be checked: ${err instanceof Error ? err.message : String(err)}`);
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

/** One line per failed test or suite, "file › title: first line of the message", for the summary. */
function vitestFailureLines(report) {
  const lines = [];
  const firstLine = (messages) => String(messages?.[0] ?? "").split("\n").find((l) => l.trim())?.trim().slice(0, 200) ?? "";
  for (const file of report.testResults ?? []) {
    const rel = path.relative(root, file.name);
    const failedTests = (file.assertionResults ?? []).filter((t) => t.status === "failed");
    for (const t of failedTests) lines.push(`${rel} › ${[...t.ancestorTitles, t.title].join(" › ")}: ${firstLine(t.failureMessages)}`);
    if (failedTests.length === 0 && file.status === "failed") lines.push(`${rel}: ${firstLine([file.message])}`);
  }
  return lines;
}

/** The same for Playwright's JSON report: unexpected and flaky tests, and errors outside tests. */
function playwrightFailureLines(report) {
  const lines = [];
  const firstLine = (text) => String(text ?? "").replace(/\x1b\[[0-9;]*m/g, "").split("\n").find((l) => l.trim())?.trim().slice(0, 200) ?? "";
  const walk = (suite, titles) => {
    for (const spec of suite.specs ?? []) {
      for (const t of spec.tests ?? []) {
        if (t.status !== "unexpected" && t.status !== "flaky") continue;
        const error = t.results?.find((r) => r.error)?.error;
        lines.push(`${spec.file} › ${[...titles, spec.title].join(" › ")}${t.status === "flaky" ? " (flaky)" : ""}: ${firstLine(error?.message)}`);
      }
    }
    for (const child of suite.suites ?? []) walk(child, [...titles, child.title]);
  };
  for (const suite of report.suites ?? []) walk(suite, []);
  for (const error of report.errors ?? []) lines.push(`outside any test: ${firstLine(error.message)}`);
  return lines;
}

/** The Vitest runs this invocation makes: one over everything asked for, or (validate) unit and integration apart. */
function vitestJobs() {
  if (vitestFiles.length > 0) return wants("unit") || wants("integration") || wants("vitest") ? [{ name: "vitest", args: vitestFiles, services: true }] : [];
  const unit = wants("unit") || wants("vitest");
  const integration = wants("integration") || wants("vitest");
  if (unit && integration && !validate) return [{ name: "vitest", args: [], services: true }];
  return [
    ...(unit ? [{ name: "unit", args: ["--project", "unit"], services: false }] : []),
    ...(integration ? [{ name: "integration", args: ["--project", "integration"], services: true }] : []),
  ];
}

const stepName = (job) => (job.name === "vitest" ? "vitest" : `vitest ${job.name}`);

function lastLines(file, n) {
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, "utf8").trimEnd().split("\n");
  return { shown: lines.slice(-n), total: lines.length };
}

async function main() {
  const unknown = [...only].filter((s) => !STEPS.includes(s));
  if (unknown.length > 0) throw new Error(`unknown step(s) ${unknown.join(", ")}: the steps are ${STEPS.join(", ")} (or give test files)`);
  const results = { steps: [], passed: 0, failed: 0, skipped: 0, failures: [] };
  const step = (name, ok) => results.steps.push({ name, ok });
  console.log(`run id ${runId}${validate ? " (validate: lint ‖ typecheck ‖ unit, then integration, then build and e2e)" : ""}`);

  const jobs = vitestJobs();
  const servicesNeeded = jobs.some((j) => j.services) || wants("e2e");
  let databaseUrl;
  let redisUrl;
  let services;
  const findServices = async () => {
    [databaseUrl, redisUrl] = await Promise.all([findPostgres(), findRedis()]);
    return { TEST_DATABASE_URL: databaseUrl, TEST_REDIS_URL: redisUrl, TEST_RUN_ID: runId };
  };

  const vitest = async (job, output) => {
    const report = `test-results/vitest${job.name === "vitest" ? "" : `-${job.name}`}.json`;
    rmSync(path.join(root, report), { force: true });
    const ok = await run(stepName(job), bin("vitest"), ["run", "--allowOnly=false", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...job.args], {
      env: job.services ? await services : {},
      output,
    });
    const json = readJson(report);
    if (json) {
      const failed = vitestFailures(json);
      results.passed += json.numPassedTests;
      results.failed += failed;
      results.skipped += json.numPendingTests + json.numTodoTests;
      console.log(`${job.name}: ${json.numPassedTests} passed, ${failed} failed (${failed - json.numFailedTests} of them whole files or suites), ${json.numPendingTests} skipped`);
      results.failures.push(...vitestFailureLines(json));
    } else {
      results.failed += 1; // it ended without a report: nothing it ran can be counted as passing
      console.log(`${job.name}: no report (${report}), counted as 1 failure`);
    }
    step(stepName(job), ok && json !== null);
    return ok && json !== null;
  };

  const e2e = async () => {
    const built = await run("build", process.execPath, [path.join(root, "node_modules/next/dist/bin/next"), "build"], { env: { NEXT_TELEMETRY_DISABLED: "1" }, output: "on-failure" });
    step("build", built);
    if (!built) return false;
    rmSync(path.join(root, "test-results/e2e.json"), { force: true });
    rmSync(E2E_SERVER_LOG, { force: true });
    const port = await freePort();
    const cachePrefix = `wtt_e2e_${runId}_${randomBytes(3).toString("hex")}`;
    const ok = await withDatabase(databaseUrl, (url) =>
      run("playwright", bin("playwright"), ["test", ...e2eFiles], {
        env: {
          E2E_PORT: String(port),
          // The app server's output goes here, not to the console: its end is shown below if a story fails.
          E2E_SERVER_LOG,
          DATABASE_URL: url,
          REDIS_URL: redisUrl,
          CACHE_PREFIX: cachePrefix,
          BETTER_AUTH_SECRET: randomBytes(32).toString("base64url"),
          // Every story signs a fresh person up from 127.0.0.1; the limit itself is tested in
          // tests/integration/rateLimit.test.ts.
          RATE_LIMIT_SIGN_UPS_PER_IP: "1000/1h",
          NEXT_TELEMETRY_DISABLED: "1",
        },
      }),
    );
    // The app server has stopped with Playwright: its cache keys go with the run.
    const removed = await deleteKeysMatching(redisUrl, `${cachePrefix}:*`);
    console.log(`removed the e2e run's ${removed} Redis key(s) under ${cachePrefix}`);
    const report = readJson("test-results/e2e.json");
    let failed = 1;
    if (report?.stats) {
      const { expected = 0, unexpected = 0, flaky = 0, skipped = 0 } = report.stats;
      // Errors outside any test (a spec that would not load, a failing web server) fail the run too.
      const errors = report.errors?.length ?? 0;
      failed = unexpected + flaky + errors;
      results.passed += expected;
      results.failed += failed;
      results.skipped += skipped;
      console.log(`playwright: ${expected} passed, ${failed} failed (${errors} errors outside tests), ${skipped} skipped`);
      results.failures.push(...playwrightFailureLines(report));
    } else {
      results.failed += 1;
      console.log("playwright: no report (test-results/e2e.json), counted as 1 failure");
    }
    if (!ok || failed > 0) {
      const tail = lastLines(E2E_SERVER_LOG, 80);
      if (tail) console.log(`\napp server output, last ${tail.shown.length} of ${tail.total} lines (all of it in ${E2E_SERVER_LOG}):\n${tail.shown.join("\n")}`);
    } else {
      rmSync(E2E_SERVER_LOG, { force: true });
    }
    step("playwright", ok && report?.stats !== undefined);
    return ok && failed === 0;
  };

  if (validate) {
    // Each phase starts when the one before has passed; the first needs no services, which are
    // found meanwhile. Integration and e2e run alone: their timing-sensitive fault tests and the
    // build each want both cores.
    if (servicesNeeded) {
      services = findServices();
      services.catch(() => {}); // awaited (and reported) where it is needed
    }
    const unitJob = jobs.find((j) => !j.services);
    const phases = [
      {
        services: false,
        tasks: [
          ...(wants("lint") ? [{ steps: ["lint"], go: () => run("lint", bin("eslint"), ["--max-warnings=0", "."], { output: "buffered" }).then((ok) => (step("lint", ok), ok)) }] : []),
          ...(wants("typecheck") ? [{ steps: ["typecheck"], go: () => run("typecheck", bin("tsc"), ["--noEmit"], { output: "buffered" }).then((ok) => (step("typecheck", ok), ok)) }] : []),
          ...(unitJob ? [{ steps: ["vitest unit"], go: () => vitest(unitJob, "buffered") }] : []),
        ],
      },
      { services: true, tasks: jobs.filter((j) => j.services).map((job) => ({ steps: [stepName(job)], go: () => vitest(job, "live") })) },
      { services: true, tasks: wants("e2e") ? [{ steps: ["build", "playwright"], go: e2e }] : [] },
    ].filter((phase) => phase.tasks.length > 0);
    let failedPhase = false;
    for (const [i, phase] of phases.entries()) {
      if (failedPhase) {
        for (const task of phase.tasks) for (const name of task.steps) results.steps.push({ name, ok: false, notRun: true });
        continue;
      }
      const names = phase.tasks.flatMap((t) => t.steps);
      log(`phase ${i + 1} of ${phases.length}${phase.tasks.length > 1 ? ", side by side" : ""}: ${names.join(phase.tasks.length > 1 ? " ‖ " : ", ")}`);
      if (phase.services && !databaseUrl) {
        await services;
        console.log(`Postgres: ${databaseUrl}\nRedis:    ${redisUrl}`);
      }
      failedPhase = !(await Promise.all(phase.tasks.map((t) => t.go()))).every(Boolean);
    }
    if (services && !databaseUrl) await services.catch(() => {}); // started for nothing: let it finish so its servers are cleaned up
  } else {
    if (wants("lint")) step("lint", await run("lint", bin("eslint"), ["--max-warnings=0", "."]));
    if (wants("typecheck")) step("typecheck", await run("typecheck", bin("tsc"), ["--noEmit"]));
    if (servicesNeeded) {
      log("services");
      services = findServices();
      await services;
      console.log(`Postgres: ${databaseUrl}\nRedis:    ${redisUrl}`);
    }
    for (const job of jobs) await vitest(job, "live");
    if (wants("e2e")) await e2e();
  }

  if (databaseUrl || redisUrl) {
    log("leftovers");
    const found = await leftovers(databaseUrl, redisUrl);
    for (const f of found) console.log(`  left behind (now removed where possible): ${f}`);
    console.log(found.length === 0 ? `nothing left behind with run id ${runId}` : `✘ the run left ${found.length} thing(s) behind`);
    if (found.length > 0) results.failed += 1;
    step("nothing left behind", found.length === 0);
  }

  console.log("\nSummary");
  for (const s of results.steps) console.log(`  ${s.notRun ? "–" : s.ok ? "✔" : "✘"} ${s.name}${s.notRun ? ": not run (an earlier phase failed)" : ""}`);
  const allOk = results.steps.every((s) => s.ok) && results.failed === 0 && results.skipped === 0;
  if (results.failures.length > 0) console.log(`Failed:\n${results.failures.map((f) => `  ✘ ${f}`).join("\n")}`);
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
