--[[
  Message windows: a ring of SLOTS buckets per (node, type, window) in the
  firm's aggregate hash, fields "<scope>|m|<type>|<win>|<slot>" plus "|h",
  the absolute index of the newest bucket written.

  A window of W ms is cut into 10 buckets of W/10 ms; the ring keeps 11, the
  buckets that overlap [now - W, now]. The count is the sum of those buckets,
  so it includes every message of the true sliding window plus at most one
  bucket (W/10) of older ones: the check may refuse up to W/10 early and never
  lets more than the limit through in any window of length W. Memory per node
  is 12 fields per configured window whatever the rate. Time is the server's
  (TIME), so every gateway agrees; a clock that steps back is treated as "now
  = newest bucket", which only counts more.
]]
local SLOTS = 11
local WINDOWS = {{name = 'per_second', ms = 1000}, {name = 'per_10s', ms = 10000}}

local function ring_fields(base)
  local f = {base .. 'h'}
  for i = 0, SLOTS - 1 do f[#f + 1] = base .. i end
  return f
end

-- Returns count in the window and the bucket index "now" falls in.
local function ring_count(agg_key, base, width_ms, now)
  local v = rcall('HMGET', agg_key, unpack(ring_fields(base)))
  local head = tonumber(v[1])
  local cur = math.floor(now / width_ms)
  if head == nil then return 0, cur end
  if cur < head then cur = head end
  local total = 0
  for k = 0, SLOTS - 1 do
    local idx = head - ((head - k) % SLOTS)
    if idx > cur - SLOTS then total = total + num(v[k + 2]) end
  end
  return total, cur
end

local function ring_add(agg_key, base, width_ms, now)
  local cur = math.floor(now / width_ms)
  local head = tonumber(rcall('HGET', agg_key, base .. 'h'))
  if head ~= nil and cur < head then cur = head end
  if head == nil or cur > head then
    local clear = {}
    local from = head == nil and cur - SLOTS + 1 or math.max(head + 1, cur - SLOTS + 1)
    for idx = from, cur do
      clear[#clear + 1] = base .. (idx % SLOTS)
      clear[#clear + 1] = 0
    end
    rcall('HSET', agg_key, base .. 'h', fmt(cur), unpack(clear))
  end
  rcall('HINCRBY', agg_key, base .. (cur % SLOTS), 1)
end

-- The (limit, base, width) of every window configured at a node for a message type.
local function windows_of(scope, node, mtype)
  local out = {}
  local m = node.m
  if not m then return out end
  for _, t in ipairs({'all', mtype}) do
    local lim = m[t]
    if lim then
      for _, w in ipairs(WINDOWS) do
        if lim[w.name] then
          out[#out + 1] = {limit = lim[w.name], name = t .. '.' .. w.name,
            base = scope .. '|m|' .. t .. '|' .. w.ms .. '|', width = w.ms / 10}
        end
      end
    end
  end
  return out
end
