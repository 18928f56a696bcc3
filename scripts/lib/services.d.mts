// Types of ./services.mjs, for the TypeScript tests that import it.

/** A TCP port nothing listens on right now (the OS picks it), on 127.0.0.1. */
export function freePort(): Promise<number>;

/** Whether something accepts TCP connections at host:port within `timeoutMs` (default 1000). */
export function canConnect(host: string, port: number, timeoutMs?: number): Promise<boolean>;

/** `adminUrl` with its database swapped for `name`. */
export function databaseUrl(adminUrl: string, name: string): string;

export type OwnDatabase = { name: string; url: string; drop: () => Promise<void> };

/** Creates the database `name` (lower-case letters, digits and _) on the server of `adminUrl`. */
export function createDatabase(adminUrl: string, name: string): Promise<OwnDatabase>;

/** Drops the database `name`, closing whatever is still connected to it; nothing if it is gone. */
export function dropDatabase(adminUrl: string, name: string): Promise<void>;

/** Names of the databases on the server of `adminUrl` whose name contains `fragment`. */
export function listDatabasesContaining(adminUrl: string, fragment: string): Promise<string[]>;

/** Unlinks every key matching the glob `pattern` (SCAN, never FLUSHDB); returns how many. */
export function deleteKeysMatching(redisUrl: string, pattern: string): Promise<number>;
