--[[
  Set or lift the runtime state of a strategy or an account: disabled,
  reduce_only, or back to enabled. The controls hash survives policy loads,
  and reserve reads s|<scope> there before the policy's own state, so a
  runtime state wins over the policy. Setting the state a scope already has
  keeps the first record (who, why, and whether it was automatic).
  Loosening (enable, or reduce_only over disabled) is the guarded direction:
  it needs a reason, may not come from a system: identity (reserved for
  automatic triggers such as the fill throttle), and may not come from the
  identity that set an automatic state.
  A state left on a scope the policy no longer has can still be lifted.
  Input:
    KEYS[1] policy hash, KEYS[2] controls hash, KEYS[3] audit stream (all of one firm)
    ARGV[1] "disable" | "reduce_only" | "enable"
    ARGV[2] scope: "strategy:<id>" or "account:<id>"
    ARGV[3] who, ARGV[4] why, ARGV[5] audit stream max length
  Output: {code, previous state ("enabled" when none was set), 1 if nothing changed}
    Codes: OK, UNKNOWN_NODE (not a strategy or account of this firm's policy),
    REENABLE_REFUSED (loosening without a reason, by a system identity, or
    by the identity that set the state automatically)
  Audit record: op state_disable | state_reduce_only | state_enable, scope, by,
  why, prev (previous state), prev_by, auto (1 if the previous state was set
  automatically), cause (of that automatic state), already, code.
]]
--- @include "common"

local policy_key, controls_key, audit_key = KEYS[1], KEYS[2], KEYS[3]
local op, scope, who, why, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local field = 's|' .. scope
local raw = rcall('HGET', controls_key, field)
local prev = raw and cmsgpack.unpack(raw) or {}
local prev_st = prev.st or 'enabled'

local function done(code, already)
  -- false, not nil: a nil would end the record's table early.
  audit(audit_key, maxlen, {op = 'state_' .. op, scope = scope, by = who, why = why,
    prev = prev_st, prev_by = prev.by or false, auto = prev.auto or 0,
    cause = prev.cause or false, already = already, code = code})
  return {code, prev_st, already}
end

local kind = string.match(scope, '^(%a+):')
local known = (kind == 'strategy' or kind == 'account') and rcall('HEXISTS', policy_key, scope) == 1
if not known and not (op == 'enable' and raw) then
  return done(R.UNKNOWN_NODE, 1)
end

if op == 'enable' or (op == 'reduce_only' and prev_st == 'disabled') then
  if not string.find(why, '%S') or string.sub(who, 1, 7) == 'system:'
      or (prev.auto == 1 and prev.by == who) then
    return done(R.REENABLE_REFUSED, 1)
  end
end
if op == 'enable' then
  return done(R.OK, 1 - rcall('HDEL', controls_key, field))
end

local st = ({disable = 'disabled', reduce_only = 'reduce_only'})[op]
if not st then
  return redis.error_reply('setState: unknown op ' .. op)
end
if prev_st == st then
  return done(R.OK, 1)
end
rcall('HSET', controls_key, field,
  cmsgpack.pack({st = st, by = who, why = why, t = now_ms(), auto = 0}))
return done(R.OK, 0)
