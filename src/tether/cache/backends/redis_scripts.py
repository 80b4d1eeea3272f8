"""The Lua scripts behind RedisBackend: each change is one script, so an entry, its index
records and the event telling other replicas about it are written together or not at all.

Keys (<p> is `{key_prefix}:cache`):
  <p>:e:<key>  string: the encoded entry; expires on its own at the entry's expiry
  <p>:meta     hash: key -> JSON [namespace, has vector (0/1), scope, prompt, version, model,
               tags, created_at, expires_at, answer size]; what invalidation and stats read
  <p>:lru      sorted set: key -> use stamp (from <p>:clock); the lowest go first
  <p>:exp      sorted set: key -> expires_at; expired entries' records are purged on put
  <p>:clock    counter: use stamps, one order for every replica
  <p>:log      stream: {o: "a"|"d", k: key, n: namespace, v: vector}; replicas follow it

Entry keys of evicted and purged entries are built inside the scripts from <p>:e:, so on Redis
Cluster the prefix must pin one hash slot (`key_prefix = "{tether}"`).
"""

from __future__ import annotations

# Forgets one entry everywhere and tells replicas to drop its vector (if it had one).
# Expects: meta, lru, exp, log, entry_prefix, maxlen as locals.
_DROP_FUNCTION = r"""
local function drop(k)
  local m = redis.call('HGET', meta, k)
  redis.call('DEL', entry_prefix .. k)
  redis.call('HDEL', meta, k)
  redis.call('ZREM', lru, k)
  redis.call('ZREM', exp, k)
  if m then
    local record = cjson.decode(m)
    if record[2] == 1 then
      redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'o', 'd', 'k', k, 'n', record[1])
    end
  end
end
"""

# KEYS: meta, lru, exp, log, clock, entry.
# ARGV: entry prefix, stream maxlen, key, encoded entry, meta JSON, ttl ms, expires_at,
# max entries, now (purge entries expired by then), namespace, vector ("" for none).
# Returns how many entries were evicted or purged.
PUT = (
    r"""
local meta, lru, exp, log, clock = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local entry_prefix, maxlen = ARGV[1], ARGV[2]
"""
    + _DROP_FUNCTION
    + r"""
local key, ttl, max_entries = ARGV[3], tonumber(ARGV[6]), tonumber(ARGV[8])
local removed = 0
for _, k in ipairs(redis.call('ZRANGEBYSCORE', exp, '-inf', ARGV[9], 'LIMIT', 0, 100)) do
  if k ~= key then
    drop(k)
    removed = removed + 1
  end
end
if ttl <= 0 then
  -- Expired already: it replaces (so removes) what the key held, and is not kept.
  if redis.call('HEXISTS', meta, key) == 1 then drop(key) end
  return removed
end
local old = redis.call('HGET', meta, key)
if old and ARGV[11] == '' and cjson.decode(old)[2] == 1 then
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'o', 'd', 'k', key, 'n', cjson.decode(old)[1])
end
redis.call('SET', KEYS[6], ARGV[4], 'PX', ttl)
redis.call('HSET', meta, key, ARGV[5])
redis.call('ZADD', lru, redis.call('INCR', clock), key)
redis.call('ZADD', exp, ARGV[7], key)
if ARGV[11] ~= '' then
  redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'o', 'a', 'k', key, 'n', ARGV[10],
             'v', ARGV[11])
end
local excess = redis.call('ZCARD', lru) - max_entries
if excess > 0 then
  local oldest = redis.call('ZRANGE', lru, 0, excess - 1)
  for _, k in ipairs(oldest) do
    drop(k)
    removed = removed + 1
  end
end
return removed
"""
)

# KEYS: entry, lru, clock. ARGV: key. The encoded entry (or nil); a hit counts as a use.
GET = r"""
local value = redis.call('GET', KEYS[1])
if value then redis.call('ZADD', KEYS[2], 'XX', redis.call('INCR', KEYS[3]), ARGV[1]) end
return value
"""

# KEYS: meta, lru, exp, log. ARGV: entry prefix, stream maxlen, then (key, meta JSON) pairs:
# each is dropped only if its record is still the one the caller matched (not put again since).
# Returns 1 or 0 per pair.
DROP = (
    r"""
local meta, lru, exp, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local entry_prefix, maxlen = ARGV[1], ARGV[2]
"""
    + _DROP_FUNCTION
    + r"""
local done = {}
for i = 3, #ARGV, 2 do
  if redis.call('HGET', meta, ARGV[i]) == ARGV[i + 1] then
    drop(ARGV[i])
    done[#done + 1] = 1
  else
    done[#done + 1] = 0
  end
end
return done
"""
)
