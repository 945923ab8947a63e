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
--- @include "swap"

local live_key, next_key = KEYS[1], KEYS[2]
local rev = ARGV[1]

local code, previous = swap_staged(live_key, next_key, rev)
return {code, previous}
