// The names the server and the browser share: which cache driver is in use and what state a
// circuit breaker is in. Written once, here, as values (for zod enums, the OpenAPI description and
// CACHE_DRIVER) and as types. No server-only imports: the cache lab's client components import it.

/** The cache transports: ioredis over TCP, @upstash/redis over HTTPS, or in-process. */
export const CACHE_DRIVERS = ["redis", "upstash", "memory"] as const;
export type CacheDriverName = (typeof CACHE_DRIVERS)[number];

/** What CACHE_DRIVER may say, and what health and the cache lab report: a driver, or no cache at all (Postgres only). */
export const CACHE_DRIVER_CHOICES = [...CACHE_DRIVERS, "none"] as const;
export type CacheDriverChoice = (typeof CACHE_DRIVER_CHOICES)[number];

/** A circuit breaker's states (lib/breaker.ts): closed lets calls through, open refuses them, half-open lets one probe through. */
export const BREAKER_STATES = ["closed", "open", "half-open"] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];
