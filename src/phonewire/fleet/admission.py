"""Fleet-wide call limits and the registry of live calls, as three atomic Redis scripts.

Why leases, not counters: ``INCR`` on admit and ``DECR`` on release leaks a slot for every
call of a node that crashes. Here a call holds a *lease*: a member of a sorted set scored by
its expiry (Redis server time + ``lease_ttl_secs``), renewed by its node's heartbeat. Every
admit first drops the expired leases (and their registry entries), then counts. So a crashed
node's calls stop counting within one TTL, and nothing needs a janitor.

* ``ADMIT``: expire stale leases; a live entry for the same call is a duplicate stream (refused,
  or taken over, by policy); else check the fleet cap and the per-number cap; then add the
  leases and the registry entry (node, since, provider, call id, number, stream nonce).
  One round trip.
* ``RELEASE``: remove this stream's lease and entry - only if the entry is still this stream's
  (a replacing stream's entry is left alone). One round trip.
* ``RENEW``: a node's heartbeat: re-add (not just extend) the leases and entries of all its
  calls, so calls that outlived a Redis restart are counted again. One round trip per period.
"""

from __future__ import annotations

__all__ = ["ADMIT", "RELEASE", "RENEW"]

# KEYS: leases zset, calls hash, number zset ('' if none)
# ARGV: member, ttl ms, fleet limit (0: none), number limit (0: none), entry json, policy,
#       number zset prefix
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, m in ipairs(stale) do
  local e = redis.call('HGET', KEYS[2], m)
  if e then
    local ok, d = pcall(cjson.decode, e)
    if ok and type(d['to']) == 'string' and d['to'] ~= '' then redis.call('ZREM', ARGV[7] .. d['to'], m) end
    redis.call('HDEL', KEYS[2], m)
  end
end
if #stale > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
if KEYS[3] ~= '' then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
local previous = redis.call('HGET', KEYS[2], ARGV[1])
if previous then
  if ARGV[6] == 'refuse' then return {'duplicate', previous} end
else
  previous = ''
  local fleet = tonumber(ARGV[3])
  if fleet > 0 and redis.call('ZCARD', KEYS[1]) >= fleet then return {'max_fleet_calls', ''} end
  local number = tonumber(ARGV[4])
  if KEYS[3] ~= '' and number > 0 and redis.call('ZCARD', KEYS[3]) >= number then
    return {'max_calls_per_number', ''}
  end
end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
if KEYS[3] ~= '' then redis.call('ZADD', KEYS[3], expiry, ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
return {'ok', previous}
"""

# KEYS: leases zset, calls hash, number zset ('' if none); ARGV: member, stream nonce
RELEASE = """
local e = redis.call('HGET', KEYS[2], ARGV[1])
if e then
  local ok, d = pcall(cjson.decode, e)
  if ok and d['stream'] ~= ARGV[2] then return 0 end
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('ZREM', KEYS[1], ARGV[1])
if KEYS[3] ~= '' then redis.call('ZREM', KEYS[3], ARGV[1]) end
return 1
"""

# KEYS: leases zset, calls hash, node key; ARGV: ttl ms, number zset prefix, node info json,
#       then (member, number, entry json) per call
RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ttl)
local renewed = 0
for i = 4, #ARGV, 3 do
  local m, number, entry = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local held = redis.call('HGET', KEYS[2], m)
  local mine = true
  if held then
    local ok, d = pcall(cjson.decode, held)
    local ok2, n = pcall(cjson.decode, entry)
    mine = ok and ok2 and d['stream'] == n['stream']
  end
  if mine then
    redis.call('ZADD', KEYS[1], now + ttl, m)
    if number ~= '' then redis.call('ZADD', ARGV[2] .. number, now + ttl, m) end
    redis.call('HSET', KEYS[2], m, entry)
    renewed = renewed + 1
  end
end
return renewed
"""
