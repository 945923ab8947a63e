--[[
  Lift the halt that a reference price jump put on one symbol of one firm
  (setPrices-3.lua). The price stays as stored: the next one is compared with
  it. A symbol that is not halted is left alone and nothing is audited.
  Input:
    KEYS[1] prices hash, KEYS[2] audit stream (one firm)
    ARGV[1] symbol, ARGV[2] who, ARGV[3] why, ARGV[4] audit stream max length
  Output: {code, 1 if the symbol was not halted (nothing changed), else 0}
    Codes: OK
]]
--- @include "common"

local prices_key, audit_key = KEYS[1], KEYS[2]
local symbol, who, why, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local field = 'h|' .. symbol
local raw = rcall('HGET', prices_key, field)
if not raw then return {R.OK, 1} end
rcall('HDEL', prices_key, field)
local halt = cmsgpack.unpack(raw)
audit(audit_key, maxlen, {op = 'resume', symbol = symbol, by = who, why = why,
  halted_by = halt.by, halted_why = halt.why, halted_at = halt.t})
return {R.OK, 0}
