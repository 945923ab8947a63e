--[[
  Retire due orders of one firm on demand (`ledger sweep`, POST /v1/sweep):
  what the bounded work of each decision has not retired yet. Each retired
  order is released (reason "expired"), audited and published as in
  includes/expiry.lua. Bounded per call: the caller calls again while more
  are due.
  Input:
    KEYS[1] policy hash, KEYS[2] aggregates hash, KEYS[3] open-order index,
    KEYS[4] audit stream, KEYS[5] positions hash, KEYS[6] expiry index (all of one firm)
    ARGV[1] most orders to retire in this call, ARGV[2] audit stream max length
  Output: {code, orders retired, 1 if more are due}
    Codes: OK
]]
--- @include "common"
--- @include "exposure"
--- @include "day"
--- @include "path"
--- @include "expiry"

local life = {policy = KEYS[1], agg = KEYS[2], open = KEYS[3], audit = KEYS[4], pos = KEYS[5],
  exp = KEYS[6], maxlen = ARGV[2]}
local n, more = expire_due(life, now_ms(), tonumber(ARGV[1]))
return {R.OK, n, more and 1 or 0}
