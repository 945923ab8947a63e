--[[
  Message windows. A window of W ms is cut into 10 buckets of W/10 ms; its
  ring keeps the 11 buckets that overlap [now - W, now] as the array
  {head, c0, ..., c10}: head is the absolute index of the newest bucket
  written, slot k holds the count of the newest bucket idx <= head with
  idx % 11 == k. The count is the sum of the slots whose bucket is one of the
  11 newest, so it includes every message of the true sliding window plus at
  most one bucket (W/10) of older ones: the check may refuse up to W/10 early
  and never lets more than the limit through in any window of length W.
  Memory is 12 numbers per configured window and node, whatever the rate.
  Time is the server's (TIME), so every gateway agrees; a clock that steps
  back counts as "now = newest bucket", which only counts more.
]]
local SLOTS = 11
local WINDOWS = {{name = 'per_second', ms = 1000}, {name = 'per_10s', ms = 10000}}

local function ring_count(ring, width, now)
  if not ring then return 0 end
  local head = ring[1]
  local cur = math.max(math.floor(now / width), head)
  local total = 0
  for k = 0, SLOTS - 1 do
    if head - ((head - k) % SLOTS) > cur - SLOTS then total = total + ring[k + 2] end
  end
  return total
end

local function ring_add(ring, width, now)
  local cur = math.floor(now / width)
  if not ring then
    ring = {cur}
    for k = 0, SLOTS - 1 do ring[k + 2] = 0 end
  end
  local head = ring[1]
  if cur > head then
    for idx = math.max(head + 1, cur - SLOTS + 1), cur do ring[(idx % SLOTS) + 2] = 0 end
    ring[1] = cur
  else
    cur = head
  end
  ring[(cur % SLOTS) + 2] = ring[(cur % SLOTS) + 2] + 1
  return ring
end

-- The windows configured at a node for a message type: {limit, name, key, width}.
local function windows_of(rec, mtype)
  local out = {}
  local m = rec.m
  if not m then return out end
  for _, t in ipairs({'all', mtype}) do
    local lim = m[t]
    if lim then
      for _, w in ipairs(WINDOWS) do
        if lim[w.name] then
          out[#out + 1] = {limit = lim[w.name], name = t .. '.' .. w.name,
            key = t .. '|' .. w.ms, width = w.ms / 10}
        end
      end
    end
  end
  return out
end
