import "server-only";

/**
 * The Lua scripts behind every cache write. Each runs atomically in Redis, so a compare-and-set and
 * the index change that goes with it can't interleave with another writer. Every key a script
 * touches is passed in KEYS (all under one hash tag), so Redis Cluster and Upstash accept them.
 * Entries are "<version>|<json>"; a tombstone is "<version>|".
 */

// Shared prologue: compares the version held at `key` with `version`: 1 when the key may take it
// (absent, older, or a floor at or below it), 2 when it already holds that very version live, 0
// when it holds a newer one, a tombstone at that version, or a floor above it. A floor
// ("<version>^") is what an eviction leaves: it reads as a miss, but nothing older may come back.
const COMPARE = `
local function compare(key, version)
  local cur = redis.call('GET', key)
  if not cur then return 1 end
  local held, sep = string.match(cur, '^(%d+)([|^])')
  local v = tonumber(held)
  if not v then return 1 end
  if sep == '^' then
    if version >= v then return 1 end
    return 0
  end
  if v < version then return 1 end
  -- The same version as a live entry changes nothing; as a tombstone, it is a refusal.
  if v == version and string.sub(cur, -1) ~= '|' then return 2 end
  return 0
end
`;

// Shared view membership. The user's list views (all / open / done, each newest first and by due
// date) are sorted sets of ids; the views' anchor is a hash of id -> the version each id's
// membership was last set from, plus the field '_' that marks the views complete. A state is
// applied only when newer than the one recorded, so states applied in any order (write-throughs,
// fills, a build's Postgres rows, repairs) leave the views as the newest of them says.
// `views` lists the 6 view keys in VIEW_ORDER.
const APPLY = `
local function apply(anchor, views, id, version, live, done, due)
  local cur = redis.call('HGET', anchor, id)
  if cur and tonumber(cur) >= version then return end
  for i = 1, 6 do redis.call('ZREM', views[i], id) end
  if live then
    local s = 2
    if done then s = 3 end
    redis.call('ZADD', views[1], id, id)
    redis.call('ZADD', views[s], id, id)
    redis.call('ZADD', views[4], due, id)
    redis.call('ZADD', views[s + 3], due, id)
  end
  redis.call('HSET', anchor, id, version)
end
`;

/**
 * The one write script: entries and view membership for one or more of a user's tasks, atomically.
 * KEYS: epoch, anchor, 6 views, build anchor, 6 build views, build lease, then one task key per item.
 * ARGV: epoch, entry ttl, tombstone ttl, views ttl, then 5 per item: id, version, json ('' for a
 * tombstone), done ('1'|'0'), due position.
 * Each entry is a compare-and-set, and only in the epoch the caller saw. Whatever its outcome, the
 * item's state is applied to the complete views (when they exist) and to views being built (while
 * the lease is held), version-guarded as in APPLY: they record which ids exist and where they sort,
 * which a stale epoch doesn't change. Returns one code per item: 1 written, 0 refused, 2 that
 * version already cached, -1 stale epoch.
 */
export const WRITE_TASKS = `${COMPARE}${APPLY}
local sameEpoch = redis.call('GET', KEYS[1]) == ARGV[1]
local live = {KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]}
local build = {KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15]}
local hasViews = redis.call('EXISTS', KEYS[2]) == 1
local building = redis.call('EXISTS', KEYS[16]) == 1
local results = {}
local n = (#ARGV - 4) / 5
for i = 1, n do
  local a = 4 + (i - 1) * 5
  local id, version, json = ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local key = KEYS[16 + i]
  local result = -1
  if sameEpoch then
    result = compare(key, version)
    if result == 1 then
      if json == '' then
        redis.call('SET', key, ARGV[a + 2] .. '|', 'EX', ARGV[3])
      else
        redis.call('SET', key, ARGV[a + 2] .. '|' .. json, 'EX', ARGV[2])
      end
    end
  end
  results[i] = result
  local isLive, done, due = json ~= '', ARGV[a + 4] == '1', ARGV[a + 5]
  if hasViews then apply(KEYS[2], live, id, version, isLive, done, due) end
  if building then apply(KEYS[9], build, id, version, isLive, done, due) end
end
if hasViews then
  -- The anchor expires first: views are never read without it, so none can be read half-expired.
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  for i = 1, 6 do redis.call('EXPIRE', live[i], tonumber(ARGV[4]) + 5) end
end
return results
`;

/**
 * KEYS: task, epoch. ARGV: version ('0'), ttl seconds, epoch. A negative entry: "0|" where nothing
 * is cached (or only a floor at 0). Views are not touched. Returns as WRITE_TASKS.
 */
export const PUT_MISSING = `${COMPARE}
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
local c = compare(KEYS[1], tonumber(ARGV[1]))
if c ~= 1 then return c end
redis.call('SET', KEYS[1], ARGV[1] .. '|', 'EX', ARGV[2])
return 1
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

/**
 * KEYS: anchor, the view to read, then the all / open / done views (newest-first ones).
 * ARGV: 'desc' | 'asc', the bound ('+inf' / '-inf', or '(<position>' to continue after a cursor),
 * limit (-1 for all). Returns false when the views are not complete, else
 * { count all, count open, count done, id1, position1, id2, position2, ... }.
 */
export const READ_VIEW = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local items
if ARGV[1] == 'desc' then
  items = redis.call('ZREVRANGEBYSCORE', KEYS[2], ARGV[2], '-inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
else
  items = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
end
local out = {redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5])}
for i = 1, #items do out[3 + i] = items[i] end
return out
`;

/** KEYS: anchor. Returns HGETALL of it (id, version, ...; '_' marks it complete), or false when absent. */
export const READ_INDEX_VERSIONS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS: anchor, build lease, build anchor, 6 build views. ARGV: token, lease ms. Returns 'started', 'exists' or 'busy'. */
export const START_INDEX_BUILD = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if not redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return 'busy' end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
return 'started'
`;

/**
 * KEYS: build lease, build anchor, 6 build views. ARGV: token, then 4 per row: id, version, done
 * ('1'|'0'), due position. Applies rows read from Postgres to the views being built, version-guarded,
 * so a write that landed during the build is never overwritten by an older row. Returns 1 while the
 * lease is held, else 0.
 */
export const ADD_TO_INDEX_BUILD = `${APPLY}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local build = {KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]}
for a = 2, #ARGV, 4 do apply(KEYS[2], build, ARGV[a], tonumber(ARGV[a + 1]), true, ARGV[a + 2] == '1', ARGV[a + 3]) end
return 1
`;

/**
 * KEYS: build lease, build anchor, 6 build views, anchor, 6 views. ARGV: token, views ttl.
 * Marks the build complete and moves it into place (a view the build left empty replaces the old
 * one by nothing). Returns 0, publishing nothing, when the lease was lost.
 */
export const PUBLISH_INDEX_BUILD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], '_', 'complete')
for i = 1, 6 do
  if redis.call('EXISTS', KEYS[2 + i]) == 1 then
    redis.call('RENAME', KEYS[2 + i], KEYS[9 + i])
    redis.call('EXPIRE', KEYS[9 + i], tonumber(ARGV[2]) + 5)
  else
    redis.call('DEL', KEYS[9 + i])
  end
end
redis.call('RENAME', KEYS[2], KEYS[9])
redis.call('EXPIRE', KEYS[9], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * KEYS: build lease, build anchor, 6 build views. ARGV: token. Gives the lease up (and drops the
 * partial build) when it is still this token's, so another caller may build at once. 1 if so.
 */
export const ABANDON_INDEX_BUILD = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
return 1
`;

/**
 * KEYS: task keys. ARGV: floor ttl. Replaces each live entry by a floor at its version
 * ("<version>^"): a miss that no older version may fill. Tombstones and absent keys stay as they
 * are. Returns how many entries were evicted.
 */
export const EVICT_TASKS = `
local n = 0
for i = 1, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if cur then
    local v, rest = string.match(cur, '^(%d+)|(.*)$')
    if v and rest ~= '' then
      redis.call('SET', KEYS[i], v .. '^', 'EX', ARGV[1])
      n = n + 1
    end
  end
end
return n
`;

/**
 * KEYS: task. ARGV: version, floor ttl. Makes the entry a floor at `version` ("<version>^": reads
 * miss, nothing older may be cached) unless it holds that version live, or anything newer. One
 * key, so it runs on a slot being migrated, where WRITE_TASKS can't: a write-through that meets
 * one leaves this instead (scripted.ts). Returns 1 when it set the floor.
 */
export const FLOOR_TASK = `${COMPARE}
if compare(KEYS[1], tonumber(ARGV[1])) ~= 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '^', 'EX', ARGV[2])
return 1
`;

/** KEYS: a scratch key. ARGV: version, value, ttl. The entries' compare-and-set, on a lab scratch key. Returns 1 / 0 / 2. */
export const CAS_SCRATCH = `${COMPARE}
local c = compare(KEYS[1], tonumber(ARGV[1]))
if c ~= 1 then return c end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
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
