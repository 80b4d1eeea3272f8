"""The Lua scripts behind RedisLimitStore: each call is one script, so it is atomic across
every replica sharing the Redis server.

Keys (all passed in KEYS, none built inside a script):
  <p>:res:<id>                hash: nano, tokens, member (latest attempt's tpm member)
  <p>:rpm:<scope>             sorted set: reservation id -> ms stamp
  <p>:tpm:<scope>             sorted set: attempt member -> ms stamp
  <p>:tpm:<scope>:n           hash: attempt member -> tokens, and "=sum" (total in window)
  <p>:budget:<scope>:<bucket> hash: spent, held (nano-dollars); expires a day after its period

Time is Redis server time (TIME) unless a test passes its own, so replicas with skewed clocks
agree on every window. Big nano-dollar amounts reach Redis as decimal strings (HINCRBY is exact
to 2^63); Lua compares them as doubles, exact to $9M, which is all a comparison needs.
"""

from __future__ import annotations

# Shared by reserve and extend. ARGV: now_ms ("" = server time), reservation id, tpm member,
# tokens, nano, record ttl ms, mode ("reserve"|"extend"), then n rates, each (unit "r"|"t",
# limit) with KEYS after the record: rpm -> 1 key, tpm -> 2 keys; then n budgets, each
# (limit nano, expire-at ms or 0) with 1 key.
# Returns {1, remaining/reset pairs per rate} or {0, "rate", rate index, retry ms, the same
# pairs} or
# {0, "budget", budget index, spent nano} or {0, "unknown"} (extend of a settled reservation).
HOLD = r"""
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id, member, tokens, cost = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local record_ttl, mode = tonumber(ARGV[6]), ARGV[7]
local window = 60000
local record = KEYS[1]
local exists = redis.call('EXISTS', record) == 1
if mode == 'extend' and not exists then return {0, 'unknown'} end
if mode == 'reserve' and exists then return {0, 'unknown'} end

local rates, k, a = {}, 2, 9
for i = 1, tonumber(ARGV[8]) do
  local rate = {unit = ARGV[a], limit = tonumber(ARGV[a + 1]), key = KEYS[k]}
  a = a + 2
  k = k + 1
  if rate.unit == 't' then
    rate.amounts = KEYS[k]
    k = k + 1
  end
  rates[i] = rate
end
local budgets, n_budgets = {}, tonumber(ARGV[a])
a = a + 1
for i = 1, n_budgets do
  budgets[i] = {limit = tonumber(ARGV[a]), expire_at = tonumber(ARGV[a + 1]), key = KEYS[k]}
  a = a + 2
  k = k + 1
end

-- Trim every window, then check everything before changing anything (all or nothing).
for i, rate in ipairs(rates) do
  local old = now - window
  if rate.unit == 't' then
    -- In slices: unpack() of more than a few thousand values overflows Lua's stack.
    while true do
      local gone = redis.call('ZRANGEBYSCORE', rate.key, '-inf', old, 'LIMIT', 0, 1000)
      if #gone == 0 then break end
      local amounts = redis.call('HMGET', rate.amounts, unpack(gone))
      local total = 0
      for _, v in ipairs(amounts) do total = total + (tonumber(v) or 0) end
      redis.call('HINCRBY', rate.amounts, '=sum', string.format('%d', -total))
      redis.call('HDEL', rate.amounts, unpack(gone))
      redis.call('ZREM', rate.key, unpack(gone))
    end
    rate.used = tonumber(redis.call('HGET', rate.amounts, '=sum') or '0')
  else
    redis.call('ZREMRANGEBYSCORE', rate.key, '-inf', old)
    rate.used = redis.call('ZCARD', rate.key)
  end
end
local function reset_ms(rate)
  local oldest = redis.call('ZRANGE', rate.key, 0, 0, 'WITHSCORES')
  if #oldest == 0 then return 0 end
  return tonumber(oldest[2]) + window - now
end
local function allowances(answer)
  for _, rate in ipairs(rates) do
    answer[#answer + 1] = math.max(rate.limit - rate.used, 0)
    answer[#answer + 1] = reset_ms(rate)
  end
  return answer
end
for i, rate in ipairs(rates) do
  local asked = 1
  if rate.unit == 't' then asked = tokens end
  local counts = rate.unit == 't' or mode == 'reserve'
  if counts and rate.used + asked > rate.limit then
    local retry = window
    if rate.used > 0 then retry = reset_ms(rate) end
    return allowances({0, 'rate', i, retry})
  end
end
local need = math.max(tonumber(cost), 1)
for i, budget in ipairs(budgets) do
  local state = redis.call('HMGET', budget.key, 'spent', 'held')
  local total = (tonumber(state[1]) or 0) + (tonumber(state[2]) or 0)
  if total + need > budget.limit then
    return {0, 'budget', i, string.format('%d', total)}
  end
end

-- Everything fits: count and hold.
local quota = {1}
for i, rate in ipairs(rates) do
  if rate.unit == 't' then
    redis.call('ZADD', rate.key, string.format('%d', now), member)
    redis.call('HSET', rate.amounts, member, ARGV[4])
    redis.call('HINCRBY', rate.amounts, '=sum', ARGV[4])
    rate.used = rate.used + tokens
    redis.call('PEXPIRE', rate.key, window + 1000)
    redis.call('PEXPIRE', rate.amounts, window + 1000)
  elseif mode == 'reserve' then
    redis.call('ZADD', rate.key, string.format('%d', now), id)
    rate.used = rate.used + 1
    redis.call('PEXPIRE', rate.key, window + 1000)
  end
end
allowances(quota)
for i, budget in ipairs(budgets) do
  redis.call('HINCRBY', budget.key, 'held', cost)
  redis.call('HSETNX', budget.key, 'spent', 0)
  if budget.expire_at > 0 then redis.call('PEXPIREAT', budget.key, budget.expire_at) end
end
redis.call('HINCRBY', record, 'nano', cost)
redis.call('HINCRBY', record, 'tokens', ARGV[4])
redis.call('HSET', record, 'member', member)
redis.call('PEXPIRE', record, record_ttl)
return quota
"""

# KEYS: record, then per tpm rate (zset, amounts hash), then per budget hash.
# ARGV: tokens used, nano used, n tpm rates. Returns 1, or 0 when settled already.
SETTLE = r"""
local record = KEYS[1]
local state = redis.call('HMGET', record, 'nano', 'tokens', 'member')
if not state[1] then return 0 end
redis.call('DEL', record)
local held_nano, held_tokens, member = state[1], tonumber(state[2]), state[3]
local correction = tonumber(ARGV[1]) - held_tokens
local k = 2
for i = 1, tonumber(ARGV[3]) do
  local amounts = KEYS[k + 1]
  k = k + 2
  local current = redis.call('HGET', amounts, member)
  if current and correction ~= 0 then
    local corrected = math.max(tonumber(current) + correction, 0)
    redis.call('HSET', amounts, member, string.format('%d', corrected))
    redis.call('HINCRBY', amounts, '=sum', string.format('%d', corrected - tonumber(current)))
  end
end
for i = k, #KEYS do
  -- '-0' is no integer to Redis
  if held_nano ~= '0' then redis.call('HINCRBY', KEYS[i], 'held', '-' .. held_nano) end
  redis.call('HINCRBY', KEYS[i], 'spent', ARGV[2])
end
return 1
"""
