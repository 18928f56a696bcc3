import { z } from "zod";
import { CACHE_DRIVER_CHOICES, type CacheDriverChoice } from "./names";

/**
 * The one place that reads `process.env`. Every variable is validated at import; a bad value stops
 * start-up (and `next build`, which imports this from next.config.ts) with the variable named.
 * Empty strings count as unset, so `FOO=` in a .env file means "use the default".
 *
 * No `import "server-only"` here, and nothing imported that has it: next.config.ts and proxy.ts
 * import this module, and neither is loaded under the react-server condition.
 */

/** A limit: at most `limit` events per fixed window of `windowSeconds` (lib/rateLimit.ts counts them). */
export type RateRule = { limit: number; windowSeconds: number };

/** `10/10m` → 10 per 600 s. Units: s, m, h. */
export function parseRateRule(text: string): RateRule | null {
  const match = /^\s*([1-9][0-9]{0,6})\s*\/\s*([1-9][0-9]{0,5})\s*([smh])\s*$/.exec(text);
  if (!match) return null;
  const seconds = Number(match[2]) * (match[3] === "h" ? 3600 : match[3] === "m" ? 60 : 1);
  return seconds <= 86_400 ? { limit: Number(match[1]), windowSeconds: seconds } : null;
}

/** ["a", "b", "c"] → "a, b or c". */
const oneOf = (values: readonly string[]) => (values.length < 2 ? values.join("") : `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`);

const intInRange = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: `${name} must be a whole number from ${min} to ${max}.` })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { error: `${name} must be a whole number from ${min} to ${max}.` });

const rateRule = (name: string, fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const rule = parseRateRule(text);
      if (!rule) ctx.addIssue({ code: "custom", message: `${name} must be a count per window, like 10/10m (units s, m, h; window at most 24h).` });
      return rule ?? { limit: 1, windowSeconds: 1 };
    });

const url = (name: string, protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { error: `${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}` },
  );

export const envSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  DATABASE_URL: url("DATABASE_URL", ["postgres:", "postgresql:"]).optional(),
  DATABASE_POOL_MAX: intInRange("DATABASE_POOL_MAX", 1, 1000).default(10),
  /** postgres.js prepared statements; turn off behind transaction-mode poolers (PgBouncer, Supavisor). */
  DATABASE_PREPARE: z.enum(["true", "false"], { error: "DATABASE_PREPARE must be true or false." }).default("true").transform((v) => v === "true"),
  /**
   * The most time one operation (a read or write of tasks) may spend waiting on Postgres, all its
   * statements together, and the client-side deadline of any one statement: past it the request
   * gets a 503, and a statement that used its whole deadline has its pool replaced
   * (lib/db/guard.ts).
   */
  DATABASE_TIMEOUT_MS: intInRange("DATABASE_TIMEOUT_MS", 100, 600_000).default(4000),
  /** Server-side `statement_timeout`; defaults to 250 ms under DATABASE_TIMEOUT_MS, so Postgres cancels first when it can. */
  DATABASE_STATEMENT_TIMEOUT_MS: intInRange("DATABASE_STATEMENT_TIMEOUT_MS", 50, 600_000).optional(),
  /** How long opening one connection may take. */
  DATABASE_CONNECT_TIMEOUT_MS: intInRange("DATABASE_CONNECT_TIMEOUT_MS", 100, 600_000).default(2000),
  /** Consecutive unavailable-database failures that open the database breaker (requests then fail fast with 503). */
  DATABASE_BREAKER_FAILURES: intInRange("DATABASE_BREAKER_FAILURES", 1, 1000).default(3),
  /** How long the database breaker stays open before one statement probes Postgres again. */
  DATABASE_BREAKER_COOLDOWN_MS: intInRange("DATABASE_BREAKER_COOLDOWN_MS", 100, 600_000).default(1000),
  PGLITE_DIR: z.string().default(".data/pglite"),
  CACHE_DRIVER: z.enum(CACHE_DRIVER_CHOICES, { error: `CACHE_DRIVER must be ${oneOf(CACHE_DRIVER_CHOICES)}.` }).optional(),
  REDIS_URL: url("REDIS_URL", ["redis:", "rediss:"]).optional(),
  /** Seed nodes of a Redis Cluster, `host:port,host:port,...`: the redis driver then runs on the cluster. */
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((value, ctx) => {
      const nodes = value.split(",").map((part) => part.trim());
      const parsed = nodes.map((n) => /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):([1-9][0-9]{0,4})$/.exec(n));
      if (nodes.length === 0 || parsed.some((m) => !m || Number(m[2]) > 65535)) {
        ctx.addIssue({ code: "custom", message: "REDIS_CLUSTER_NODES must be host:port pairs separated by commas, like 10.0.0.1:7000,10.0.0.2:7000." });
        return z.NEVER;
      }
      return parsed.map((m) => ({ host: (m as RegExpExecArray)[1]!.replace(/^\[|\]$/g, ""), port: Number((m as RegExpExecArray)[2]) }));
    })
    .optional(),
  /**
   * On a cluster: how many replicas of a master must have a write-through (WAIT) before it counts as
   * written, so a failover can't lose it; set it to the replicas each master has. 0: no wait (ADR 014).
   */
  REDIS_CLUSTER_WAIT_REPLICAS: intInRange("REDIS_CLUSTER_WAIT_REPLICAS", 0, 16).default(1),
  /** How long such a write waits for them; capped at half of CACHE_TIMEOUT_MS. */
  REDIS_CLUSTER_WAIT_MS: intInRange("REDIS_CLUSTER_WAIT_MS", 1, 10_000).default(100),
  UPSTASH_REDIS_REST_URL: url("UPSTASH_REDIS_REST_URL", ["https:", "http:"]).optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().optional(),
  /** Vercel KV / Vercel Marketplace names for the same two values. */
  KV_REST_API_URL: url("KV_REST_API_URL", ["https:", "http:"]).optional(),
  KV_REST_API_TOKEN: z.string().optional(),
  CACHE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_.-]{1,64}$/, { error: "CACHE_PREFIX must be 1-64 characters of letters, digits, : _ . -" })
    .default("wt"),
  CACHE_TTL_SECONDS: intInRange("CACHE_TTL_SECONDS", 1, 30 * 24 * 3600).default(3600),
  CACHE_TIMEOUT_MS: intInRange("CACHE_TIMEOUT_MS", 10, 60_000).default(250),
  CACHE_BREAKER_FAILURES: intInRange("CACHE_BREAKER_FAILURES", 1, 1000).default(5),
  CACHE_BREAKER_COOLDOWN_MS: intInRange("CACHE_BREAKER_COOLDOWN_MS", 100, 600_000).default(2000),
  /** Repair pass period (ms) for long-lived servers; 0 turns the timer off (serverless: use the repair route). */
  CACHE_REPAIR_INTERVAL_MS: intInRange("CACHE_REPAIR_INTERVAL_MS", 0, 3_600_000).default(1000),
  /** Lets schedulers run the whole-store audit and repair: `Authorization: Bearer <CRON_SECRET>` (Vercel Cron sends it). */
  CRON_SECRET: z.string().min(16, { error: "CRON_SECRET must be at least 16 characters." }).optional(),
  /**
   * Signs session cookies. Required in production; in development a random one is made once and
   * kept in .data/auth-secret (lib/auth/secret.ts).
   */
  BETTER_AUTH_SECRET: z.string().min(32, { error: "BETTER_AUTH_SECRET must be at least 32 characters (try: openssl rand -base64 32)." }).optional(),
  /** The app's public URL (e.g. https://tasks.example.com): cookies get Secure and the origin check uses it. Inferred from each request when unset. */
  BETTER_AUTH_URL: url("BETTER_AUTH_URL", ["https:", "http:"]).optional(),
  /** Emails (comma-separated) of the accounts that may run the whole-store audit and repair. */
  ADMIN_EMAILS: z
    .string()
    .transform((s) =>
      s
        .split(",")
        .map((e) => e.trim().toLowerCase())
        .filter((e) => e !== ""),
    )
    .default([]),
  /** When set, /api/metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16, { error: "METRICS_TOKEN must be at least 16 characters." }).optional(),
  /** Abuse limits, as count/window (s, m or h). 429 with Retry-After past them. */
  RATE_LIMIT_SIGN_IN_FAILURES_PER_IP: rateRule("RATE_LIMIT_SIGN_IN_FAILURES_PER_IP", "10/10m"),
  RATE_LIMIT_SIGN_IN_FAILURES_PER_EMAIL: rateRule("RATE_LIMIT_SIGN_IN_FAILURES_PER_EMAIL", "10/10m"),
  RATE_LIMIT_SIGN_UPS_PER_IP: rateRule("RATE_LIMIT_SIGN_UPS_PER_IP", "10/1h"),
  RATE_LIMIT_WRITES_PER_USER: rateRule("RATE_LIMIT_WRITES_PER_USER", "600/1m"),
  /** 1 turns every limit off (load tests, benchmarks). Never the default. */
  RATE_LIMIT_DISABLED: z.enum(["0", "1", "true", "false"], { error: "RATE_LIMIT_DISABLED must be 1 or 0." }).default("0").transform((v) => v === "1" || v === "true"),
  /**
   * How many proxies in front of the app append to X-Forwarded-For: the per-address limits count
   * the address the outermost of them saw. 0 (the default) is the socket's address, whatever the
   * client writes in the header (lib/rateLimit.ts, docs/decisions/008-client-address.md).
   */
  TRUSTED_PROXY_HOPS: intInRange("TRUSTED_PROXY_HOPS", 0, 10).default(0),
  /** How long a whole JSON request body may take to arrive; past it the request gets a 408. */
  REQUEST_BODY_TIMEOUT_MS: intInRange("REQUEST_BODY_TIMEOUT_MS", 100, 600_000).default(30_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"], { error: "LOG_LEVEL must be debug, info, warn, error or silent." }).default("info"),
  CACHE_MEMORY_MAX_ENTRIES: intInRange("CACHE_MEMORY_MAX_ENTRIES", 100, 10_000_000).default(200_000),
});

export type Env = z.infer<typeof envSchema>;

function blankToUndefined(source: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = source[key];
    out[key] = value === undefined || value.trim() === "" ? undefined : value.trim();
  }
  return out;
}

/** Parses an environment; throws one Error whose message names every bad variable. */
export function parseEnv(source: Record<string, string | undefined>): Env {
  const result = envSchema.safeParse(blankToUndefined(source));
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid environment configuration:\n${lines.join("\n")}`);
  }
  const env = result.data;
  if (env.CACHE_DRIVER === "redis" && !env.REDIS_URL && !env.REDIS_CLUSTER_NODES) {
    throw new Error("Invalid environment configuration:\n  CACHE_DRIVER: is redis, but neither REDIS_URL nor REDIS_CLUSTER_NODES is set.");
  }
  if (env.REDIS_URL && env.REDIS_CLUSTER_NODES) {
    throw new Error("Invalid environment configuration:\n  REDIS_CLUSTER_NODES: set together with REDIS_URL; set one (a single Redis, or a cluster).");
  }
  if (env.CACHE_DRIVER === "upstash" && !upstashCredentials(env)) {
    throw new Error(
      "Invalid environment configuration:\n  CACHE_DRIVER: is upstash, but UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (or KV_REST_API_URL and KV_REST_API_TOKEN) are not both set.",
    );
  }
  return env;
}

export const env: Env = parseEnv(process.env);

type CacheEnv = Pick<Env, "CACHE_DRIVER" | "REDIS_URL" | "REDIS_CLUSTER_NODES" | "UPSTASH_REDIS_REST_URL" | "UPSTASH_REDIS_REST_TOKEN" | "KV_REST_API_URL" | "KV_REST_API_TOKEN">;

/** Upstash REST credentials from either naming (Upstash's own, or Vercel's KV_*), when both parts are set. */
export function upstashCredentials(e: Partial<CacheEnv>): { url: string; token: string } | undefined {
  const url = e.UPSTASH_REDIS_REST_URL ?? e.KV_REST_API_URL;
  const token = e.UPSTASH_REDIS_REST_TOKEN ?? e.KV_REST_API_TOKEN;
  return url && token ? { url, token } : undefined;
}

/**
 * The cache driver in effect: explicit CACHE_DRIVER; else upstash when its REST URL and token are
 * set; else redis when REDIS_URL (or REDIS_CLUSTER_NODES) is set; else memory.
 */
export function resolveCacheDriver(e: Partial<CacheEnv>): CacheDriverChoice {
  return e.CACHE_DRIVER ?? (upstashCredentials(e) ? "upstash" : e.REDIS_URL || e.REDIS_CLUSTER_NODES ? "redis" : "memory");
}
