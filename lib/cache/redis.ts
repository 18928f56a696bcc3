import "server-only";
import { createHash } from "node:crypto";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { createScriptedDriver, type RedisTransport, type ScriptedDriverOptions } from "./scripted";
import { CacheUnavailableError, type CacheDriver } from "./types";

export type RedisDriverOptions = ScriptedDriverOptions & {
  url: string;
  /** Per-command timeout; a slow or paused Redis fails the command instead of the request. */
  commandTimeoutMs: number;
};

function clientOptions(options: { commandTimeoutMs: number }): RedisOptions {
  return {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(1000, options.commandTimeoutMs * 4),
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    // Keep reconnecting for ever, backing off to 1 s, so the app uses Redis again when it returns.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    // Commands issued in the same tick (a list page's fills) share one round trip.
    enableAutoPipelining: true,
  };
}

/** The redis driver: ioredis over TCP, for docker-compose and long-lived servers. */
export function createRedisDriver(options: RedisDriverOptions): CacheDriver & { client: Redis } {
  const client = new Redis(options.url, clientOptions(options));
  // ioredis emits 'error' on every failed reconnect; the breaker logs state changes instead.
  client.on("error", () => {});
  return Object.assign(createScriptedDriver("redis", transportOf(client, options), options), { client });
}

export type RedisClusterDriverOptions = ScriptedDriverOptions & {
  /** Seed nodes (`host:port`); the client learns the rest of the cluster from them. */
  nodes: Array<{ host: string; port: number }>;
  commandTimeoutMs: number;
};

/**
 * The redis driver on a Redis Cluster: ioredis' Cluster client, which follows MOVED and ASK
 * redirects and refreshes the slot map on failover. The same Lua scripts run unchanged: every key
 * a script touches is one user's, under one hash tag, so in one slot. Reads and writes go to
 * masters only (a replica may lag its master, which would break read-your-writes; ADR 014).
 */
export function createRedisClusterDriver(options: RedisClusterDriverOptions): CacheDriver & { client: Cluster } {
  const client = new Cluster(options.nodes, {
    redisOptions: clientOptions(options),
    scaleReads: "master",
    enableOfflineQueue: true,
    enableAutoPipelining: true,
    // Keep trying for ever, backing off to 1 s, as the single-node client does.
    clusterRetryStrategy: (times) => Math.min(50 * times, 1000),
    // A failover or a reshard moves slots: follow MOVED at once, and retry a command that met
    // CLUSTERDOWN or TRYAGAIN (a slot being migrated) briefly rather than failing it.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 50,
    retryDelayOnMoved: 0,
    maxRedirections: 16,
    slotsRefreshTimeout: Math.max(1000, options.commandTimeoutMs * 4),
  });
  client.on("error", () => {});
  return Object.assign(createScriptedDriver("redis", transportOf(client, options, true), options), { client });
}

/**
 * The transport over one ioredis client (a single Redis, or a Cluster). On a cluster, anything that
 * walks the keyspace visits every master, and a delete of many keys is sent key by key (they may be
 * in different slots); everything else already stays in one slot.
 */
function transportOf(client: Redis | Cluster, _options: { commandTimeoutMs: number }, isCluster = false): RedisTransport {
  // While Redis is known to be unreachable, fail at once instead of queueing each command until
  // it times out: the breaker's half-open probe then costs nothing, and requests read Postgres at
  // Postgres speed. Only the very first connection attempt may queue, so a store that starts
  // with Redis up can use it from its first request.
  let firstAttempt = true;
  client.on("ready", () => (firstAttempt = false));
  client.on("close", () => (firstAttempt = false));
  const connected = () => {
    if (client.status !== "ready" && !firstAttempt) throw new CacheUnavailableError("redis is not connected");
  };
  const shas = new Map<string, string>();
  const shaOf = (script: string) => {
    let sha = shas.get(script);
    if (!sha) shas.set(script, (sha = createHash("sha1").update(script).digest("hex")));
    return sha;
  };

  return {
    async get(key) {
      connected();
      return client.get(key);
    },
    async set(key, value, { ttlSeconds, onlyIfAbsent = false } = {}) {
      connected();
      const reply =
        ttlSeconds === undefined
          ? onlyIfAbsent
            ? await client.set(key, value, "NX")
            : await client.set(key, value)
          : onlyIfAbsent
            ? await client.set(key, value, "EX", ttlSeconds, "NX")
            : await client.set(key, value, "EX", ttlSeconds);
      return reply === "OK";
    },
    async mget(keys) {
      connected();
      return client.mget(keys);
    },
    async evalScript(script, keys, args) {
      connected();
      try {
        return await client.evalsha(shaOf(script), keys.length, ...keys, ...args);
      } catch (err) {
        // After a restart or SCRIPT FLUSH Redis no longer knows the script: send it whole once.
        if (err instanceof Error && err.message.startsWith("NOSCRIPT")) return client.eval(script, keys.length, ...keys, ...args);
        throw err;
      }
    },
    async scan(cursor, match, count) {
      connected();
      if (!(client instanceof Cluster)) return client.scan(cursor, "MATCH", match, "COUNT", count);
      // One cursor over every master in turn: "<master index>:<that master's cursor>". A reshard
      // while a walk runs may show a key twice or not at all; the walks (audits, clean-up) allow it.
      const masters = client.nodes("master").sort((a, b) => `${a.options.host}:${a.options.port}`.localeCompare(`${b.options.host}:${b.options.port}`));
      const [at, inner] = cursor === "0" ? [0, "0"] : (cursor.split(":") as [string, string]);
      const index = Number(at);
      const node = masters[index];
      if (!node) return ["0", []];
      const [next, keys] = await node.scan(inner, "MATCH", match, "COUNT", count);
      if (next !== "0") return [`${index}:${next}`, keys];
      return [index + 1 < masters.length ? `${index + 1}:0` : "0", keys];
    },
    async del(keys) {
      connected();
      if (keys.length === 0) return;
      if (isCluster) await Promise.all(keys.map((k) => client.unlink(k)));
      else await client.unlink(...keys);
    },
    async ttls(keys) {
      connected();
      // One user's keys (one slot), so a pipeline is fine on a cluster too.
      const replies = await client.pipeline(keys.map((k) => ["ttl", k])).exec();
      return (replies ?? []).map(([err, value]) => (err ? -2 : Number(value)));
    },
    async ping() {
      connected();
      await client.ping();
    },
    async close() {
      client.disconnect();
    },
  };
}
