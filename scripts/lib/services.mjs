// What scripts/test.mjs, bench/run.mjs and the tests (tests/support/services.ts, redisServer.ts) do
// to the servers they use, written once: find a free port, make and drop a database of their own,
// remove keys by pattern. Plain ESM so `node` runs it as it is; types in services.d.mts.
import net from "node:net";

/** A TCP port nothing listens on right now (the OS picks it), on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Whether something accepts TCP connections at host:port within `timeoutMs`. */
export function canConnect(host, port, timeoutMs = 1000) {
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

// Names are interpolated into SQL as identifiers: only what our own name makers produce.
const DATABASE_NAME = /^[a-z][a-z0-9_]{0,62}$/;

function checkedName(name) {
  if (!DATABASE_NAME.test(name)) throw new Error(`refusing database name ${JSON.stringify(name)}: lower-case letters, digits and _ only`);
  return name;
}

/** `adminUrl` with its database swapped for `name`. */
export function databaseUrl(adminUrl, name) {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withAdmin(adminUrl, fn) {
  const { default: postgres } = await import("postgres");
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/**
 * Creates the database `name` on the server of `adminUrl` (never one of the shared databases);
 * `drop()` removes it again, closing whatever is still connected to it.
 */
export async function createDatabase(adminUrl, name) {
  checkedName(name);
  await withAdmin(adminUrl, (admin) => admin.unsafe(`create database "${name}"`));
  return { name, url: databaseUrl(adminUrl, name), drop: () => dropDatabase(adminUrl, name) };
}

export async function dropDatabase(adminUrl, name) {
  checkedName(name);
  await withAdmin(adminUrl, (admin) => admin.unsafe(`drop database if exists "${name}" with (force)`));
}

/** Names of the databases on the server of `adminUrl` whose name contains `fragment`. */
export async function listDatabasesContaining(adminUrl, fragment) {
  return withAdmin(adminUrl, async (admin) => {
    const rows = await admin`select datname from pg_database where strpos(datname, ${fragment}) > 0 order by datname`;
    return rows.map((r) => r.datname);
  });
}

/**
 * Unlinks every key matching the glob `pattern` (SCAN, never FLUSHDB: the Redis may be shared) and
 * returns how many it removed. Build patterns with lib/cache/keys.ts (everythingPattern(prefix)).
 */
export async function deleteKeysMatching(redisUrl, pattern) {
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
