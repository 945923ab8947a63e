--[[
  Swap a firm's whole policy in one step: the staged copy replaces the live
  hash, so a decision sees the old policy or the new one, never a mix.
  Revisions only move forward: a load that finds a newer revision live lost a
  race with another load and changes nothing (its staged copy is deleted), so
  two loads at once leave the newer one, never a mix of both.
  UNLINK frees a large old policy off the main thread.
  Input:
    KEYS[1] live policy hash, KEYS[2] staged policy hash (this load's own),
    KEYS[3] audit stream
    ARGV[1] policy revision, ARGV[2] sha256 of the policy, ARGV[3] who,
    ARGV[4] source (file name), ARGV[5] audit stream max length
  Output: {code, previous revision or nil}
    Codes: OK; NO_POLICY (nothing staged, or staged for another revision, or
    the live revision is this one or newer: the revision live is returned)
]]
--- @include "common"
--- @include "swap"

local live_key, next_key, audit_key = KEYS[1], KEYS[2], KEYS[3]
local rev, sha, who, source, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local code, previous = swap_staged(live_key, next_key, rev)
if code ~= R.OK then return {code, previous} end
audit(audit_key, maxlen, {op = 'policy_load', rev = rev, sha = sha, by = who,
  source = source, previous = previous, code = R.OK})
return {R.OK, previous}
