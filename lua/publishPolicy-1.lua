--[[
  Publish the policy document clients route with, unless a newer load has
  published already: the document never goes back to an older revision.
  Input:
    KEYS[1] policy document hash
    ARGV[1] policy revision, ARGV[2..] field, value pairs to set
  Output: {code, previous revision or nil}
    Codes: OK; NO_POLICY (the published revision is this one or newer: it is
    returned and nothing changed)
]]
--- @include "common"

local doc_key = KEYS[1]
local rev = ARGV[1]

local previous = rcall('HGET', doc_key, 'rev')
if previous and tonumber(previous) >= tonumber(rev) then
  return {R.NO_POLICY, previous}
end
rcall('HSET', doc_key, 'rev', rev, unpack(ARGV, 2))
return {R.OK, previous}
