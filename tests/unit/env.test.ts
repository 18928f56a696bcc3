import { describe, expect, test } from "vitest";
import { parseEnv, resolveCacheDriver } from "@/lib/env";

describe("environment configuration", () => {
  test("an empty environment gives the zero-setup defaults (PGlite + memory cache)", () => {
    const env = parseEnv({});
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.PGLITE_DIR).toBe(".data/pglite");
    expect(resolveCacheDriver(env)).toBe("memory");
    expect(env.CACHE_TTL_SECONDS).toBe(3600);
    expect(env.CACHE_PREFIX).toBe("wt");
    expect(env.DATABASE_POOL_MAX).toBe(10);
  });

  test("REDIS_CLUSTER_NODES selects the redis driver on a cluster; bad node lists and both at once are refused", () => {
    const env = parseEnv({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, redis-b:7001,[::1]:7002" });
    expect(resolveCacheDriver(env)).toBe("redis");
    expect(env.REDIS_CLUSTER_NODES).toEqual([
      { host: "10.0.0.1", port: 7000 },
      { host: "redis-b", port: 7001 },
      { host: "::1", port: 7002 },
    ]);
    for (const bad of ["10.0.0.1", "10.0.0.1:0", "host:70000", "a:1,,b:2", "redis://a:1"]) {
      expect(() => parseEnv({ REDIS_CLUSTER_NODES: bad }), bad).toThrow(/REDIS_CLUSTER_NODES must be host:port pairs/);
    }
    expect(() => parseEnv({ REDIS_CLUSTER_NODES: "a:1", REDIS_URL: "redis://127.0.0.1:6379" })).toThrow(/set one/);
    expect(() => parseEnv({ CACHE_DRIVER: "redis" })).toThrow(/neither REDIS_URL nor REDIS_CLUSTER_NODES/);
  });

  test("on a cluster, write-throughs wait for 1 replica for up to 100 ms unless told otherwise; 0 replicas turns it off", () => {
    const env = parseEnv({ REDIS_CLUSTER_NODES: "a:1" });
    expect([env.REDIS_CLUSTER_WAIT_REPLICAS, env.REDIS_CLUSTER_WAIT_MS]).toEqual([1, 100]);
    const off = parseEnv({ REDIS_CLUSTER_NODES: "a:1", REDIS_CLUSTER_WAIT_REPLICAS: "0", REDIS_CLUSTER_WAIT_MS: "150" });
    expect([off.REDIS_CLUSTER_WAIT_REPLICAS, off.REDIS_CLUSTER_WAIT_MS]).toEqual([0, 150]);
    expect(() => parseEnv({ REDIS_CLUSTER_WAIT_MS: "0" })).toThrow(/REDIS_CLUSTER_WAIT_MS must be a whole number from 1 to 10000/);
    expect(() => parseEnv({ REDIS_CLUSTER_WAIT_REPLICAS: "-1" })).toThrow(/REDIS_CLUSTER_WAIT_REPLICAS must be a whole number/);
  });

  test("REDIS_URL alone selects the redis driver; CACHE_DRIVER overrides it", () => {
    expect(resolveCacheDriver(parseEnv({ REDIS_URL: "redis://127.0.0.1:6379" }))).toBe("redis");
    expect(resolveCacheDriver(parseEnv({ REDIS_URL: "redis://127.0.0.1:6379", CACHE_DRIVER: "none" }))).toBe("none");
    expect(resolveCacheDriver(parseEnv({ CACHE_DRIVER: "memory" }))).toBe("memory");
  });

  test("empty strings count as unset", () => {
    const env = parseEnv({ DATABASE_URL: "", REDIS_URL: "  ", CACHE_TTL_SECONDS: "" });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.REDIS_URL).toBeUndefined();
    expect(env.CACHE_TTL_SECONDS).toBe(3600);
  });

  test.each([
    ["CACHE_TTL_SECONDS", "ten"],
    ["CACHE_TTL_SECONDS", "0"],
    ["CACHE_DRIVER", "memcached"],
    ["DATABASE_URL", "mysql://localhost/db"],
    ["REDIS_URL", "http://localhost"],
    ["DATABASE_POOL_MAX", "-1"],
    ["CACHE_PREFIX", "has space"],
    ["CACHE_PREFIX", "{tag}"],
    ["DATABASE_PREPARE", "yes"],
    ["BETTER_AUTH_SECRET", "too-short"],
    ["BETTER_AUTH_URL", "ftp://tasks.example.com"],
    ["METRICS_TOKEN", "short"],
    ["RATE_LIMIT_WRITES_PER_USER", "lots"],
    ["RATE_LIMIT_SIGN_UPS_PER_IP", "10/2d"],
    ["RATE_LIMIT_DISABLED", "yes"],
    ["TRUSTED_PROXY_HOPS", "11"],
    ["TRUSTED_PROXY_HOPS", "-1"],
    ["TRUSTED_PROXY_HOPS", "one"],
  ])("a bad %s (%s) stops start-up with a message naming the variable", (name, value) => {
    expect(() => parseEnv({ [name]: value })).toThrow(new RegExp(`^Invalid environment configuration:\\n  ${name}: `));
  });

  test("abuse limits default to sane values, are configurable, and are on unless disabled", () => {
    const env = parseEnv({});
    expect(env.RATE_LIMIT_SIGN_IN_FAILURES_PER_IP).toEqual({ limit: 10, windowSeconds: 600 });
    expect(env.RATE_LIMIT_WRITES_PER_USER).toEqual({ limit: 600, windowSeconds: 60 });
    expect(env.RATE_LIMIT_DISABLED).toBe(false);
    expect(parseEnv({ RATE_LIMIT_SIGN_UPS_PER_IP: "3/30s", RATE_LIMIT_DISABLED: "1" })).toMatchObject({
      RATE_LIMIT_SIGN_UPS_PER_IP: { limit: 3, windowSeconds: 30 },
      RATE_LIMIT_DISABLED: true,
    });
    expect(parseEnv({ ADMIN_EMAILS: " Ops@Example.test , ,b@example.test" }).ADMIN_EMAILS).toEqual(["ops@example.test", "b@example.test"]);
    // Reached directly unless told otherwise: X-Forwarded-For from a client is not trusted.
    expect(env.TRUSTED_PROXY_HOPS).toBe(0);
    expect(parseEnv({ TRUSTED_PROXY_HOPS: "2" }).TRUSTED_PROXY_HOPS).toBe(2);
  });

  test("CACHE_DRIVER=redis without REDIS_URL is refused, naming both", () => {
    expect(() => parseEnv({ CACHE_DRIVER: "redis" })).toThrow(/CACHE_DRIVER: is redis, but neither REDIS_URL nor REDIS_CLUSTER_NODES is set/);
  });
});
