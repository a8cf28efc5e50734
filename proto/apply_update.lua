-- apply_update.lua - apply one canonical update v1 to an order, atomically.
--
-- Called by EVALSHA (any publisher, any language, gets the same semantics):
--   KEYS[1] trk:{ID}:state  hash: state (JSON), cursor (last applied cursor)
--   KEYS[2] trk:{ID}:log    stream, capped: one entry per applied update,
--                           field "f" = the update frame, entry id = cursor
--   KEYS[3] trk:{ID}:seen   set of event_id values already applied
--   ARGV[1] the update, canonical JSON (proto_update_to_json)
--   ARGV[2] TTL in seconds while the order is active
--   ARGV[3] TTL in seconds once the order's status is terminal
--   ARGV[4] length cap of the log stream (exact: the log holds the newest
--           ARGV[4] frames, so a resume from any logged cursor can be served whole)
--   ARGV[5] optional: the status from which the courier's position is shown
--           (courier-visible-from; default courier_assigned)
--
-- Returns {"applied", cursor} | {"stale"} | {"duplicate"} | {"withheld"}; an
-- error reply starting "ERR trackgate:" for input that is not a canonical
-- update.
--
-- Privacy: the courier's position is stored and published only while the
-- order's status (after this update) is at or after ARGV[5] and not terminal.
-- Once an order is terminal (or while it is before ARGV[5], e.g. "created")
-- its stored location is dropped, and a location in an update is neither
-- stored nor published; the update's other parts still apply.  An update
-- with nothing else that applies is "withheld": nothing is written.  An order
-- with no status yet shows positions (a publisher that sends no statuses).
-- Every reader (snapshots, GET /v1/orders, frames, replays) sees only what is
-- stored here, so the rule holds for all of them.
--
-- Staleness is judged per part: the location, the status, the eta and the
-- places (pickup and dropoff) each carry the ts of the update that last set
-- them, and a part whose ts is older than that is not applied.  For the
-- providers that deliver out of order without an event time (RANKED below:
-- Wolt Drive), a status that ranks below the stored one (created <
-- courier_assigned < ... < at_dropoff < the four terminal ones) is not applied
-- whatever its ts, nor is the eta that comes with it (see "Status rank" below).  If no part applies the update is stale
-- and nothing is written or published.  If only some parts apply, the frame
-- carries only those parts, so no watcher ever sees an older position or
-- status than the stored one.
--
-- The frame is built here, once, and PUBLISHed on trk:{ID}; gateways forward
-- its bytes unchanged.  Its cursor is the log entry id, chosen here so the
-- frame can carry it: the millisecond clock of the server, kept strictly
-- increasing per order (same ms => seq + 1).

local function fail(msg)
  return redis.error_reply('ERR trackgate: ' .. msg)
end

local ok, u = pcall(cjson.decode, ARGV[1])
if not ok or type(u) ~= 'table' then
  return fail('update is not a JSON object')
end
local id = u.order_id
if type(id) ~= 'string' or #id < 1 or #id > 128 or not string.match(id, '^[A-Za-z0-9._~-]+$') then
  return fail('order_id is missing or invalid')
end
local base = 'trk:{' .. id .. '}'
if KEYS[1] ~= base .. ':state' or KEYS[2] ~= base .. ':log' or KEYS[3] ~= base .. ':seen' then
  return fail('KEYS do not match order_id')
end
local ts = u.ts
if type(ts) ~= 'number' or ts <= 0 or ts ~= math.floor(ts) then
  return fail('ts must be a positive integer')
end
-- The canonical statuses in order; the four terminal ones share the last rank.
local RANK = {
  created = 1, courier_assigned = 2, en_route_to_pickup = 3, at_pickup = 4, picked_up = 5,
  en_route_to_dropoff = 6, at_dropoff = 7, delivered = 8, cancelled = 8, returned = 8, failed = 8,
}
local visible_from = 'courier_assigned'
if ARGV[5] ~= nil and ARGV[5] ~= '' then visible_from = ARGV[5] end
if not RANK[visible_from] or RANK[visible_from] > 7 then
  return fail('ARGV[5] must be a non-terminal status')
end

local ttl_active = tonumber(ARGV[2])
local ttl_terminal = tonumber(ARGV[3])
local maxlen = tonumber(ARGV[4])
if not ttl_active or not ttl_terminal or not maxlen or ttl_active < 1 or ttl_terminal < 1 or maxlen < 1 then
  return fail('ARGV[2..4] must be positive numbers')
end

local event_id = u.event_id
if type(event_id) == 'string' and event_id ~= '' then
  if redis.call('SISMEMBER', KEYS[3], event_id) == 1 then
    return {'duplicate'}
  end
else
  event_id = nil
end

local stored = redis.call('HMGET', KEYS[1], 'state', 'cursor')
local state
if stored[1] then
  local sok, s = pcall(cjson.decode, stored[1])
  if sok and type(s) == 'table' then state = s end
end
if not state then state = {order_id = id} end

-- Per-part stale check and merge.
local applied_loc, applied_status, applied_eta, applied_places = false, false, false, false
local has_loc = type(u.location) == 'table'
local has_status = type(u.status) == 'string'
local has_eta = type(u.eta) == 'table'
local has_places = type(u.places) == 'table'
local stale_parts = 0

if has_loc then
  local cur = state.location
  -- A location dropped by the privacy rule leaves its ts behind (location_ts),
  -- so an older one that comes later stays stale.
  local cur_ts = type(cur) == 'table' and type(cur.ts) == 'number' and cur.ts or nil
  if not cur_ts and type(state.location_ts) == 'number' then cur_ts = state.location_ts end
  if not cur_ts or ts >= cur_ts then
    local loc = {}
    for k, v in pairs(u.location) do loc[k] = v end
    loc.ts = ts
    state.location = loc
    applied_loc = true
  else
    stale_parts = stale_parts + 1
  end
end
-- Status rank, for the providers in RANKED: a status that ranks below the
-- stored one never replaces it, whatever its ts, because they deliver out of
-- order and give no event time (Wolt Drive's ts is when the webhook was sent),
-- so a late event of an earlier step carries a newer ts.  Such an update
-- comes from an earlier step of the delivery, so its ETA (the ETA of that
-- step) does not apply either; its location and places are still judged by
-- ts (and by the privacy rule below).  Statuses the RANK table does not know
-- are judged by ts alone.  Other providers and /v1/updates keep ts as the
-- only order: their ts is the event's own, and a status may really go back
-- (Onfleet's taskUnassigned: courier_assigned -> created).
local RANKED = {wolt_drive = true}
local behind = false
if has_status then
  local new_rank, cur_rank = RANK[u.status], RANK[state.status]
  behind = RANKED[u.provider] == true and new_rank ~= nil and cur_rank ~= nil and
           new_rank < cur_rank
  if not behind and (type(state.status_ts) ~= 'number' or ts >= state.status_ts) then
    state.status = u.status
    state.status_ts = ts
    applied_status = true
  else
    stale_parts = stale_parts + 1
  end
end
if has_eta then
  local cur = state.eta
  if behind then
    stale_parts = stale_parts + 1
  elseif type(cur) ~= 'table' or type(cur.ts) ~= 'number' or ts >= cur.ts then
    local eta = {}
    for k, v in pairs(u.eta) do eta[k] = v end
    eta.ts = ts
    state.eta = eta
    applied_eta = true
  else
    stale_parts = stale_parts + 1
  end
end

-- places: each member (pickup, dropoff) keeps the ts of the update that set
-- it and is judged on its own, so an update naming only the dropoff keeps the
-- pickup, and a late pickup is not judged by a newer dropoff.  Only members
-- with numeric lat and lng are taken (a publisher may call this script
-- directly); the frame carries the members that applied.
local places_out
local reencode = false -- the update names a place member that was not taken
if has_places then
  for k in pairs(u.places) do
    if k ~= 'pickup' and k ~= 'dropoff' then reencode = true end
  end
  local cur = type(state.places) == 'table' and state.places or {}
  local stale_member = false
  for _, k in ipairs({'pickup', 'dropoff'}) do
    local p = u.places[k]
    if type(p) == 'table' and type(p.lat) == 'number' and type(p.lng) == 'number' then
      local c = cur[k]
      if type(c) ~= 'table' or type(c.ts) ~= 'number' or ts >= c.ts then
        cur[k] = {lat = p.lat, lng = p.lng, ts = ts}
        places_out = places_out or {}
        places_out[k] = {lat = p.lat, lng = p.lng}
        applied_places = true
      else
        stale_member = true
      end
    elseif p ~= nil then
      reencode = true
    end
  end
  cur.ts = nil -- the format before per-member times
  if applied_places then state.places = cur end
  if stale_member then stale_parts = stale_parts + 1 end
end

-- Privacy (see the header): judged on the status the order has after this update.
local withheld = false
local shown_status = state.status
if type(shown_status) == 'string' and RANK[shown_status] and
   (RANK[shown_status] == 8 or RANK[shown_status] < RANK[visible_from]) then
  local loc = state.location
  if type(loc) == 'table' and type(loc.ts) == 'number' and
     (type(state.location_ts) ~= 'number' or loc.ts > state.location_ts) then
    state.location_ts = loc.ts
  end
  state.location = nil
  if applied_loc then
    applied_loc = false
    withheld = true
  end
end

if not (applied_loc or applied_status or applied_eta or applied_places) then
  if withheld then return {'withheld'} end
  return {'stale'}
end

-- courier and provider follow the newest update that applied at all.
if type(u.courier) == 'table' then
  if type(state.courier_ts) ~= 'number' or ts >= state.courier_ts then
    state.courier = u.courier
    state.courier_ts = ts
  else
    stale_parts = stale_parts + 1
    u.courier = nil
  end
end
if type(u.provider) == 'string' and (type(state.updated_at) ~= 'number' or ts >= state.updated_at) then
  state.provider = u.provider
end
if type(state.updated_at) ~= 'number' or ts > state.updated_at then state.updated_at = ts end

-- The update as published: verbatim when every part applied, else only the
-- parts that did (a courier older than the stored one counts as stale too).
local update_json = ARGV[1]
if stale_parts > 0 or reencode or withheld then
  if not applied_loc then u.location = nil end
  if not applied_status then u.status = nil end
  if not applied_eta then u.eta = nil end
  u.places = places_out
  update_json = cjson.encode(u)
end

-- Next cursor: strictly after both the log's newest entry and the stored
-- cursor (the log may have expired apart from the state).
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = 0
local function after(c)
  if not c then return end
  local cms, cseq = string.match(c, '^(%d+)-(%d+)$')
  cms, cseq = tonumber(cms), tonumber(cseq)
  if cms and cseq and cms >= ms then
    if cms > ms or cseq + 1 > seq then ms, seq = cms, cseq + 1 end
  end
end
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if top[1] then after(top[1][1]) end
after(stored[2])
local cursor = string.format('%.0f-%.0f', ms, seq)

local frame = '{"type":"update","order_id":"' .. id .. '","update":' .. update_json ..
  ',"cursor":"' .. cursor .. '"}'

redis.call('XADD', KEYS[2], 'MAXLEN', maxlen, cursor, 'f', frame)
redis.call('HSET', KEYS[1], 'state', cjson.encode(state), 'cursor', cursor)
if event_id then redis.call('SADD', KEYS[3], event_id) end

local terminal = {delivered = true, cancelled = true, returned = true, failed = true}
local ttl = ttl_active
if terminal[state.status] then ttl = ttl_terminal end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
-- Always, so the set never outlives the state (EXPIRE of a missing key is a no-op).
redis.call('EXPIRE', KEYS[3], ttl)

redis.call('PUBLISH', base, frame)
return {'applied', cursor}
