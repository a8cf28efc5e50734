-- resume.lua - what a watcher missed after its cursor, read atomically.
--
--   KEYS[1] trk:{ID}:log    the order's log stream (field "f" = update frame)
--   KEYS[2] trk:{ID}:state  the order's state hash {state, cursor}
--   ARGV[1] the cursor to resume after, "<ms>-<seq>"
--   ARGV[2] the most entries to return
--
-- Returns {"ok", frame, frame, ...}: every logged frame after the cursor, in
-- order (possibly none), when the log still holds everything after it; or
-- {"reset", state|nil, cursor|nil} when it does not (the cursor is older than
-- the oldest entry, newer than the newest, or the log is gone), or when more
-- than ARGV[2] entries follow the cursor, so the watcher starts again from a
-- snapshot.  Never a part of what follows the cursor: a client that gets
-- "ok" has everything.  Read-only.

local function parse(c)
  if type(c) ~= 'string' then return nil end
  local ms, seq = string.match(c, '^(%d+)-(%d+)$')
  if not ms then return nil end
  return tonumber(ms), tonumber(seq)
end

local function le(am, as, bm, bs)
  return am < bm or (am == bm and as <= bs)
end

local function reset()
  local st = redis.call('HMGET', KEYS[2], 'state', 'cursor')
  return {'reset', st[1], st[2]}
end

local sm, ss = parse(ARGV[1])
if not sm then
  return redis.error_reply('ERR trackgate: the resume cursor is not <ms>-<seq>')
end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return reset() end
local fm, fs = parse(first[1][1])
-- Entries after the cursor may have been trimmed unless it is at least the oldest one.
if not le(fm, fs, sm, ss) then return reset() end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local nm, ns = parse(newest[1][1])
-- A cursor from the future (another Redis, a flushed one) resumes nothing real.
if not le(sm, ss, nm, ns) then return reset() end

local max = tonumber(ARGV[2])
if not max or max < 1 or max ~= math.floor(max) then
  return redis.error_reply('ERR trackgate: the most entries (ARGV[2]) must be a positive integer')
end
local out = {'ok'}
-- One more than may be returned: if it comes, the replay would be cut short.
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', max + 1)
if #entries > max then return reset() end
for _, e in ipairs(entries) do
  local fields = e[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'f' then out[#out + 1] = fields[i + 1] end
  end
end
return out
