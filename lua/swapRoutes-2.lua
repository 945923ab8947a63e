--[[
  Swap the clients' routes hash for the staged copy of one policy load, unless
  a newer load's routes are already live (then the staged copy is deleted).
  Both keys share the {routes} hash tag.
  Input:
    KEYS[1] live routes hash, KEYS[2] staged routes hash (this load's own)
    ARGV[1] policy revision
  Output: {code, previous revision or nil}
    Codes: OK; NO_POLICY (nothing staged for this revision, or the live
    revision is this one or newer: the revision live is returned)
]]
--- @include "common"

local live_key, next_key = KEYS[1], KEYS[2]
local rev = ARGV[1]

if rcall('HGET', next_key, 'meta|rev') ~= rev then
  return {R.NO_POLICY, false}
end
local previous = rcall('HGET', live_key, 'meta|rev')
if previous and tonumber(previous) >= tonumber(rev) then
  rcall('UNLINK', next_key)
  return {R.NO_POLICY, previous}
end
rcall('RENAME', next_key, live_key)
rcall('PERSIST', live_key)
return {R.OK, previous}
