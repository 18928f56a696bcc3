import "server-only";
import { createHash } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { createScriptedDriver, type RedisTransport, type ScriptedDriverOptions } from "./scripted";
import { CacheUnavailableError, type CacheDriver } from "./types";

export type RedisDriverOptions = ScriptedDriverOptions & {
  url: string;
  /** Per-command timeout; a slow or paused Redis fails the command instead of the request. */
  commandTimeoutMs: number;
};

/** The redis driver: ioredis over TCP, for docker-compose and long-lived servers. */
export function createRedisDriver(options: RedisDriverOptions): CacheDriver & { client: Redis } {
  const redisOptions: RedisOptions = {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(1000, options.commandTimeoutMs * 4),
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    // Keep reconnecting for ever, backing off to 1 s, so the app uses Redis again when it returns.
    retryStrategy: (times) => Math.min(50 * times, 1000),
    // Commands issued in the same tick (a list page's fills) share one round trip.
    enableAutoPipelining: true,
  };
  const client = new Redis(options.url, redisOptions);
  // ioredis emits 'error' on every failed reconnect; the breaker logs state changes instead.
  client.on("error", () => {});

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

  const transport: RedisTransport = {
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
      return client.scan(cursor, "MATCH", match, "COUNT", count);
    },
    async del(keys) {
      connected();
      if (keys.length > 0) await client.unlink(...keys);
    },
    async ttls(keys) {
      connected();
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
  return Object.assign(createScriptedDriver("redis", transport, options), { client });
}
