import "server-only";
import { Redis } from "@upstash/redis";
import { TIMEOUT_STRETCH } from "../breaker";
import { createScriptedDriver, type RedisTransport, type ScriptedDriverOptions } from "./scripted";
import type { CacheDriver } from "./types";

export type UpstashDriverOptions = ScriptedDriverOptions & {
  url: string;
  token: string;
  /** The breaker's per-call timeout; each HTTP request is aborted after TIMEOUT_STRETCH times this long, as a backstop. */
  commandTimeoutMs: number;
};

/**
 * The upstash driver: @upstash/redis over HTTPS, for serverless deploys (no TCP connection to keep).
 * It runs the same Lua scripts as the redis driver (EVALSHA, EVAL on NOSCRIPT).
 */
export function createUpstashDriver(options: UpstashDriverOptions): CacheDriver {
  const redis = new Redis({
    url: options.url,
    token: options.token,
    // Values are "<version>|<json>" strings: hand them over untouched.
    automaticDeserialization: false,
    responseEncoding: false,
    // The breaker decides about retrying; a retry loop here would only add latency.
    retry: false,
    signal: () => AbortSignal.timeout(options.commandTimeoutMs * TIMEOUT_STRETCH),
    enableTelemetry: false,
  });
  const scripts = new Map<string, ReturnType<Redis["createScript"]>>();
  const scriptFor = (lua: string) => {
    let s = scripts.get(lua);
    if (!s) scripts.set(lua, (s = redis.createScript(lua)));
    return s;
  };
  const transport: RedisTransport = {
    get: (key) => redis.get<string>(key),
    async set(key, value, { ttlSeconds, onlyIfAbsent = false } = {}) {
      const opts = ttlSeconds === undefined ? (onlyIfAbsent ? { nx: true as const } : undefined) : onlyIfAbsent ? { ex: ttlSeconds, nx: true as const } : { ex: ttlSeconds };
      const reply = await (opts ? redis.set(key, value, opts) : redis.set(key, value));
      return reply === "OK";
    },
    mget: (keys) => redis.mget<Array<string | null>>(...keys),
    evalScript: (lua, keys, args) => scriptFor(lua).exec(keys, args.map(String)),
    async scan(cursor, match, count) {
      const [next, keys] = await redis.scan(cursor, { match, count });
      return [String(next), keys];
    },
    async del(keys) {
      if (keys.length > 0) await redis.del(...keys);
    },
    async ttls(keys) {
      const p = redis.pipeline();
      for (const k of keys) p.ttl(k);
      return (await p.exec()).map(Number);
    },
    async ping() {
      await redis.ping();
    },
    async close() {},
  };
  return createScriptedDriver("upstash", transport, options);
}
