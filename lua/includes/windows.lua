--[[
  Message windows. A window of W ms is cut into 10 buckets of W/10 ms; its
  ring keeps the 11 buckets that overlap [now - W, now] as the array
  {head, total, c0, ..., c10}: head is the absolute index of the newest
  bucket written, slot k holds the count of the newest bucket idx <= head
  with idx % 11 == k, and total is the sum of the slots. The count includes
  every message of the true sliding window plus at most one bucket (W/10) of
  older ones: the check may refuse up to W/10 early and never lets more than
  the limit through in any window of length W. A check subtracts only the
  buckets that expired since head (usually none). Memory is 13 numbers per
  configured window and node, whatever the rate. Time is the server's
  (TIME), so every gateway agrees; a clock that steps back counts as
  "now = newest bucket", which only counts more.
]]
local SLOTS = 11
local NO_WINDOWS = {}

local function ring_count(r, width, now)
  if not r then return 0 end
  local head = r[1]
  local cur = math.floor(now / width)
  if cur <= head then return r[2] end
  if cur - head >= SLOTS then return 0 end
  local total = r[2]
  for idx = head - SLOTS + 1, cur - SLOTS do total = total - r[(idx % SLOTS) + 3] end
  return total
end

local function ring_add(r, width, now)
  local cur = math.floor(now / width)
  if not r then
    r = {cur, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
  end
  local head = r[1]
  if cur > head then
    if cur - head >= SLOTS then
      for s = 2, SLOTS + 2 do r[s] = 0 end
    else
      for idx = head + 1, cur do
        local s = (idx % SLOTS) + 3
        r[2] = r[2] - r[s]
        r[s] = 0
      end
    end
    r[1] = cur
  else
    cur = head
  end
  local s = (cur % SLOTS) + 3
  r[s] = r[s] + 1
  r[2] = r[2] + 1
  return r
end

-- The windows of a node for a message type, precomputed at policy load
-- (ledger/policy_store.py) as one flat array: limit, ring id, bucket width
-- ms, then the next window's three.
local function windows_of(rec, mtype)
  local w = rec.w
  return w and w[mtype] or NO_WINDOWS
end
