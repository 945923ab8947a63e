--[[
  Swap a firm's whole policy in one step: the staged copy replaces the live
  hash, so a decision sees the old policy or the new one, never a mix.
  UNLINK frees a large old policy off the main thread.
  Input:
    KEYS[1] live policy hash, KEYS[2] staged policy hash, KEYS[3] audit stream
    ARGV[1] policy revision, ARGV[2] sha256 of the policy, ARGV[3] who,
    ARGV[4] source (file name), ARGV[5] audit stream max length
  Output: {code, previous revision or nil}
    Codes: OK, NO_POLICY (nothing staged, or staged for another revision)
]]
--- @include "common"

local live_key, next_key, audit_key = KEYS[1], KEYS[2], KEYS[3]
local rev, sha, who, source, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if rcall('HGET', next_key, 'meta|rev') ~= rev then
  return {R.NO_POLICY, false}
end
local previous = rcall('HGET', live_key, 'meta|rev')
rcall('UNLINK', live_key)
rcall('RENAME', next_key, live_key)
audit(audit_key, maxlen, {op = 'policy_load', rev = rev, sha = sha, by = who,
  source = source, previous = previous, code = R.OK})
return {R.OK, previous}
