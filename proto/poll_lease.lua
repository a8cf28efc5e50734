-- poll_lease.lua - the lease that lets one node at a time poll an order's
-- provider, taken over by another node once its holder stops renewing it.
--
--   KEYS[1] trk:{ID}:poll_lease  string: the holder's node id, with a PX expiry
--   KEYS[2] trk:{ID}:state       the order's state hash (apply_update.lua), only read
--   ARGV[1] the action: "acquire", "renew" or "release"
--   ARGV[2] the caller's node id (non-empty)
--   ARGV[3] the lease's lifetime in ms, an integer in [1, 10^12 - 1] (read by acquire and renew)
--
-- acquire: SET NX PX; when the caller already holds the lease, its lifetime
--   starts again (a node that lost track of its lease gets it back).
-- renew:   PEXPIRE, only when the caller is the holder.
-- release: DEL, only when the caller is the holder (compare and delete).
--
-- Returns {held, remaining_ms, status}: held is 1 when the caller holds the
-- lease after the call, else 0; remaining_ms is the lease's time left (the
-- caller's after acquire or renew, the other holder's otherwise; 0 when no one
-- holds it, or when the key has no expiry, which this script never leaves);
-- status is the order's stored status, "" when it has no state (so that a
-- poller learns in the same round trip that the order is over).
-- Wrong arguments are an error "ERR trackgate: ...".  A node compares only
-- its own id: two nodes must never share one.

local function fail(why)
  return redis.error_reply('ERR trackgate: ' .. why)
end

local key = KEYS[1]
local action = ARGV[1]
local holder = ARGV[2]

if #KEYS ~= 2 or type(key) ~= 'string' or not string.match(key, '^trk:{[^{}]+}:poll_lease$') then
  return fail('KEYS[1] must be trk:{ID}:poll_lease, KEYS[2] its trk:{ID}:state')
end
if KEYS[2] ~= string.sub(key, 1, #key - #':poll_lease') .. ':state' then
  return fail('KEYS[2] must be the state key of the order of KEYS[1]')
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

local function others()
  local left = redis.call('PTTL', key)
  if left < 0 then left = 0 end
  return {0, left, status()}
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
  if redis.call('SET', key, holder, 'NX', 'PX', ms) then
    return {1, ms, status()}
  end
  if redis.call('GET', key) == holder then
    redis.call('PEXPIRE', key, ms)
    return {1, ms, status()}
  end
  return others()
elseif action == 'renew' then
  local ms = ttl()
  if not ms then return fail('the lease time (ARGV[3]) must be an integer in [1, 10^12 - 1]') end
  if redis.call('GET', key) == holder then
    redis.call('PEXPIRE', key, ms)
    return {1, ms, status()}
  end
  return others()
elseif action == 'release' then
  if redis.call('GET', key) == holder then
    redis.call('DEL', key)
    return {0, 0, status()}
  end
  return others()
end
return fail('unknown action (ARGV[1]): acquire, renew or release')
