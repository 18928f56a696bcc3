import "server-only";

/**
 * The Lua scripts behind every cache write. Each runs atomically in Redis, so a compare-and-set and
 * the index change that goes with it can't interleave with another writer. Every key a script
 * touches is passed in KEYS (all under one hash tag), so Redis Cluster and Upstash accept them.
 * Entries are "<version>|<json>"; a tombstone is "<version>|".
 */

// Shared prologue: compares the version held at `key` with `version`: 1 when the key may take it
// (absent, or older), 2 when it already holds that very version live, 0 when it holds a newer one
// or a tombstone at that version.
const NEWER = `
local function compare(key, version)
  local cur = redis.call('GET', key)
  if not cur then return 1 end
  local v = tonumber(string.match(cur, '^(%d+)|'))
  if (not v) or v < version then return 1 end
  -- The same version as a live entry changes nothing; as a tombstone, it is a refusal.
  if v == version and string.sub(cur, -1) ~= '|' then return 2 end
  return 0
end
`;

/**
 * KEYS: task, epoch. ARGV: version, json, ttl seconds, epoch.
 * Returns 1 when written, 0 when refused (a newer version is cached), 2 when that version is already
 * cached, -1 when the cache's epoch is not the one the caller saw before reading Postgres (the
 * cache was flushed or restarted since).
 */
export const PUT_TASK = `${NEWER}
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return -1 end
local version = tonumber(ARGV[1])
local c = compare(KEYS[1], version)
if c ~= 1 then return c end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return 1
`;

/**
 * KEYS: task, index, build, buildRemoved, buildLease, epoch. ARGV: version, json ('' for a
 * tombstone), entry ttl, id, 'add'|'remove', index ttl, epoch.
 * Writes the entry (compare-and-set, and only in the epoch the caller saw) and, whatever the
 * outcome, records the id's arrival or removal in the complete index and in an index being built;
 * an id whose entry is already a tombstone is never added. Returns 1 / 0 / 2 / -1 as PUT_TASK.
 */
export const WRITE_THROUGH_MEMBERSHIP = `${NEWER}
local version = tonumber(ARGV[1])
local result = 0
if redis.call('GET', KEYS[6]) ~= ARGV[7] then
  result = -1
else
  result = compare(KEYS[1], version)
  if result == 1 then redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3]) end
end
local id = ARGV[4]
local cur = redis.call('GET', KEYS[1])
if ARGV[5] == 'add' and not (cur and string.sub(cur, -1) == '|') then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('ZADD', KEYS[2], id, id)
    redis.call('EXPIRE', KEYS[2], ARGV[6])
  end
  if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('ZADD', KEYS[3], id, id) end
elseif ARGV[5] == 'remove' then
  redis.call('ZREM', KEYS[2], id)
  if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('SADD', KEYS[4], id) end
end
return result
`;

/**
 * KEYS: epoch. ARGV: a fresh random value. Returns the cache's epoch, creating it when absent. The
 * epoch vanishes with a FLUSHALL or a restart, so writes prepared before one are refused after it.
 */
export const ENSURE_EPOCH = `
local e = redis.call('GET', KEYS[1])
if e then return e end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`;

/** KEYS: index. ARGV: max ('+inf' or '(<id>'), limit. Returns false when no complete index exists. */
export const READ_INDEX_PAGE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], 1, 'LIMIT', 0, tonumber(ARGV[2]))
`;

/** KEYS: index, build, buildRemoved, buildLease. ARGV: token, lease ms. Returns 'started', 'exists' or 'busy'. */
export const START_INDEX_BUILD = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if not redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[2], 'NX') then return 'busy' end
redis.call('DEL', KEYS[2], KEYS[3])
return 'started'
`;

/** KEYS: build, buildLease. ARGV: token, then ids. Returns 1 while the lease is held, else 0. */
export const ADD_TO_INDEX_BUILD = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i]) end
return 1
`;

/**
 * KEYS: index, build, buildRemoved, buildLease. ARGV: token, sentinel, index ttl.
 * Removes ids deleted during the build, marks the result complete and moves it into place.
 */
export const PUBLISH_INDEX_BUILD = `
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return 0 end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('ZREM', KEYS[2], id) end
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('RENAME', KEYS[2], KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[3], KEYS[4])
return 1
`;

/**
 * KEYS: build, buildRemoved, buildLease. ARGV: token. Gives the lease up (and drops the partial
 * build) when it is still this token's, so another caller may build at once. Returns 1 if so.
 */
export const ABANDON_INDEX_BUILD = `
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
`;

// ---- auth values (lib/cache/types.ts, CacheDriver) ---------------------------------------------

/** What a revoked auth value holds. JSON never starts with NUL, so no stored value can equal it. */
export const REVOKED_VALUE = "\u0000revoked";

/** KEYS: key. ARGV: value, ttl seconds ('' for none), revoked marker. Returns 1 when written, 0 when the key is revoked. */
export const SET_UNLESS_REVOKED = `
if redis.call('GET', KEYS[1]) == ARGV[3] then return 0 end
if ARGV[2] == '' then redis.call('SET', KEYS[1], ARGV[1]) else redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
`;

/**
 * What a key holds while one request fills it from Postgres: this prefix plus a random ticket. Like
 * the revoked marker it reads as absent; a revocation overwrites it and a flush deletes it, and
 * either makes that fill refuse itself (FILL_WITH_TICKET).
 */
export const FILLING_PREFIX = "\u0000filling:";

/** Markers (revoked, filling) start with NUL; a stored value never does. */
export function isMarker(value: string): boolean {
  return value.charCodeAt(0) === 0;
}

/** KEYS: key. ARGV: revoked marker. Returns the value and deletes it; nil (and no delete) when absent or a marker. */
export const GET_AND_DELETE_VALUE = `
local v = redis.call('GET', KEYS[1])
if (not v) or string.byte(v, 1) == 0 then return false end
redis.call('DEL', KEYS[1])
return v
`;

/** KEYS: key. ARGV: ticket, value, ttl seconds. Writes only while the key still holds this fill's ticket. */
export const FILL_WITH_TICKET = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
`;

/** KEYS: key. ARGV: value, ttl seconds. Replaces a live value; an absent key or a marker is left alone (0). */
export const REPLACE_LIVE_VALUE = `
local v = redis.call('GET', KEYS[1])
if (not v) or string.byte(v, 1) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
`;

/** KEYS: key. ARGV: ttl seconds. Increments; a new counter gets the ttl. Returns the count. */
export const INCREMENT_VALUE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
`;

/** KEYS: key. Decrements an existing positive counter (DECR keeps its ttl); a plain DECR would make an absent key -1 forever. Returns the count. */
export const DECREMENT_VALUE = `
local n = tonumber(redis.call('GET', KEYS[1]) or '')
if (not n) or n <= 0 then return 0 end
return redis.call('DECR', KEYS[1])
`;
