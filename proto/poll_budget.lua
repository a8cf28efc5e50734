-- poll_budget.lua - a provider's request budget, shared by every node and
-- worker on this Redis: the provider's API requests get slots at least
-- spacing apart on Redis's clock (TIME), whichever node asks, so a group
-- never sends a provider more than its budget however many nodes poll.
--
--   KEYS[1] trk:poll_budget:{PROVIDER}  string: the next free slot, in
--           microseconds since the epoch (Redis's clock), with a PX expiry
--   ARGV[1] the action: "take" or "hold"
--   ARGV[2] take: the spacing between slots in microseconds, an integer in
--           [1, 10^9]; hold: how long from now no slot is given, in ms, an
--           integer in [0, 10^9]
--   ARGV[3] take: the longest wait for a slot, in ms, an integer in [0, 10^9]
--
-- take: the next free slot is max(stored, now).  When it is at most
--   ARGV[3] away it is reserved (the stored slot moves one spacing past it)
--   and {1, wait_ms} returned: the caller sends in wait_ms.  Otherwise
--   nothing is reserved and {0, wait_ms} says how far the next slot is.
--   A caller never retries before wait_ms, so a queue of callers costs one
--   script call each per slot, not a spin.
-- hold: no slot before now + ARGV[2] (a provider's 429 with Retry-After
--   holds back every node); {1, 0}.
-- Wrong arguments are an error "ERR trackgate: ...".

local function fail(why)
  return redis.error_reply('ERR trackgate: ' .. why)
end

local key = KEYS[1]
if #KEYS ~= 1 or type(key) ~= 'string' or not string.match(key, '^trk:poll_budget:{[%w_%-]+}$') then
  return fail('KEYS[1] must be trk:poll_budget:{PROVIDER}')
end

local function int(s, max)
  if type(s) ~= 'string' or #s > 10 or not string.match(s, '^%d+$') then return nil end
  local n = tonumber(s)
  if n > max then return nil end
  return n
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_slot = tonumber(redis.call('GET', key) or '0') or 0
if next_slot < now then next_slot = now end

local function store(slot)
  -- The key outlives the slot by a second: an idle budget leaves nothing behind.
  redis.call('SET', key, string.format('%d', slot), 'PX', math.floor((slot - now) / 1000) + 1000)
end

local action = ARGV[1]
if action == 'take' then
  local spacing = int(ARGV[2], 1000000000)
  local max_wait = int(ARGV[3], 1000000000)
  if not spacing or spacing < 1 then
    return fail('the spacing (ARGV[2]) must be an integer in [1, 10^9] microseconds')
  end
  if not max_wait then return fail('the longest wait (ARGV[3]) must be an integer in [0, 10^9] ms') end
  local wait_ms = math.ceil((next_slot - now) / 1000)
  if wait_ms > max_wait then return {0, wait_ms} end
  store(next_slot + spacing)
  return {1, wait_ms}
elseif action == 'hold' then
  local hold = int(ARGV[2], 1000000000)
  if not hold then return fail('the hold (ARGV[2]) must be an integer in [0, 10^9] ms') end
  local until_slot = now + hold * 1000
  if until_slot > next_slot then store(until_slot) end
  return {1, 0}
end
return fail('unknown action (ARGV[1]): take or hold')
