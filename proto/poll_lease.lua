-- poll_lease.lua - the lease that lets one node at a time poll an order's
-- provider, taken over by another node once its holder stops renewing it.
--
--   KEYS[1] trk:{ID}:poll_lease  string: the holder's node id, with a PX expiry
--   KEYS[2] trk:{ID}:state       the order's state hash (apply_update.lua), only read
--   KEYS[3] trk:{ID}:source      the order's poll source (JSON, http/sources.c), only read
--   ARGV[1] the action: "acquire", "renew" or "release"
--   ARGV[2] the caller's node id (non-empty)
--   ARGV[3] the lease's lifetime in ms, an integer in [1, 10^12 - 1] (read by acquire and renew)
--   ARGV[4] optional: the providers the caller polls, comma-separated.  When
--           given, acquire takes the lease and renew keeps it only while the
--           source names one of them (renew releases it otherwise: a DELETE
--           of the source, or a source moved to a provider the caller does
--           not poll, ends its polling); absent or "": the source is not
--           looked at
--
-- acquire: SET NX PX; when the caller already holds the lease, its lifetime
--   starts again (a node that lost track of its lease gets it back).
-- renew:   PEXPIRE, only when the caller is the holder.
-- release: DEL, only when the caller is the holder (compare and delete).
--
-- Returns {held, remaining_ms, status, source}: held is 1 when the caller
-- holds the lease after the call, else 0; remaining_ms is the lease's time
-- left (the caller's after acquire or renew, the other holder's otherwise; 0
-- when no one holds it, or when the key has no expiry, which this script
-- never leaves); status is the order's stored status, "" when it has no
-- state, and source the stored source document, "" when none (so that a
-- poller learns in the same round trip what to poll and that the order is over).
-- Wrong arguments are an error "ERR trackgate: ...".  A node compares only
-- its own id: two nodes must never share one.

local function fail(why)
  return redis.error_reply('ERR trackgate: ' .. why)
end

local key = KEYS[1]
local action = ARGV[1]
local holder = ARGV[2]

if #KEYS ~= 3 or type(key) ~= 'string' or not string.match(key, '^trk:{[^{}]+}:poll_lease$') then
  return fail('KEYS[1] must be trk:{ID}:poll_lease, KEYS[2] its trk:{ID}:state, KEYS[3] its trk:{ID}:source')
end
local base = string.sub(key, 1, #key - #':poll_lease')
if KEYS[2] ~= base .. ':state' or KEYS[3] ~= base .. ':source' then
  return fail('KEYS[2] and KEYS[3] must be the state and source keys of the order of KEYS[1]')
end
if type(holder) ~= 'string' or holder == '' then
  return fail('the node id (ARGV[2]) is empty')
end

-- The stored status: "" without a state, or when the state is not one this
-- project's script wrote.
local function status()
  local doc = redis.call('HGET', KEYS[2], 'state')
  if not doc then return '' end
  local ok, state = pcall(cjson.decode, doc)
  if ok and type(state) == 'table' and type(state.status) == 'string' then
    return state.status
  end
  return ''
end

local source = redis.call('GET', KEYS[3]) or ''

-- Whether the source names a provider of ARGV[4] (true when ARGV[4] is not given).
local function pollable()
  local list = ARGV[4]
  if type(list) ~= 'string' or list == '' then return true end
  if source == '' then return false end
  local ok, doc = pcall(cjson.decode, source)
  if not ok or type(doc) ~= 'table' or type(doc.provider) ~= 'string' then return false end
  for name in string.gmatch(list, '[^,]+') do
    if name == doc.provider then return true end
  end
  return false
end

local function answer(held, left)
  return {held, left, status(), source}
end

local function others()
  local left = redis.call('PTTL', key)
  if left < 0 then left = 0 end
  return answer(0, left)
end

-- The lease time: digits only, at most 12 (about 31 years), so that it goes
-- to PX and back in the reply exactly.
local function ttl()
  local s = ARGV[3]
  if type(s) ~= 'string' or #s > 12 or not string.match(s, '^[1-9]%d*$') then return nil end
  return tonumber(s)
end

if action == 'acquire' then
  local ms = ttl()
  if not ms then return fail('the lease time (ARGV[3]) must be an integer in [1, 10^12 - 1]') end
  if not pollable() then
    if redis.call('GET', key) == holder then redis.call('DEL', key) end
    return others()
  end
  if redis.call('SET', key, holder, 'NX', 'PX', ms) then
    return answer(1, ms)
  end
  if redis.call('GET', key) == holder then
    redis.call('PEXPIRE', key, ms)
    return answer(1, ms)
  end
  return others()
elseif action == 'renew' then
  local ms = ttl()
  if not ms then return fail('the lease time (ARGV[3]) must be an integer in [1, 10^12 - 1]') end
  if not pollable() then
    if redis.call('GET', key) == holder then redis.call('DEL', key) end
    return others()
  end
  if redis.call('GET', key) == holder then
    redis.call('PEXPIRE', key, ms)
    return answer(1, ms)
  end
  return others()
elseif action == 'release' then
  if redis.call('GET', key) == holder then
    redis.call('DEL', key)
    return answer(0, 0)
  end
  return others()
end
return fail('unknown action (ARGV[1]): acquire, renew or release')
