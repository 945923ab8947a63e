--[[
  The trading day. The policy hash field "meta|day" holds {r = roll time in
  ms after local midnight, s = {start ms, UTC offset ms, ...}}: the zone's
  offsets from each start on (ledger/policy/controls.py, renewed at every
  policy load). Day counters (the realized P&L at node array [7] day, [8]
  P&L) belong to one day number and read as zero on any other: the day
  rolls over by itself, and open orders are untouched by it.
]]
local DAY_MS = 86400000

local function day_of(meta_day, now)
  if not meta_day then return 0 end
  local d = cmsgpack.unpack(meta_day)
  local s, off = d.s, d.s[2]
  for i = 1, #s, 2 do
    if s[i] <= now then off = s[i + 1] else break end
  end
  return math.floor((now + off - d.r) / DAY_MS)
end

local function day_pnl(a, day)
  if a[7] == day then return a[8] end
  return 0
end
