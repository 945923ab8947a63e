--[[
  Set or lift the stress factor of one node. While set, every money limit at
  the node, and below it on an order's path, is multiplied by the factor
  (the smallest one on the path wins; reserve reads "x|<scope>" from the
  controls hash, docs/controls-layout.md). Lifting works for a scope the
  policy no longer has.
  Input:
    KEYS[1] policy hash, KEYS[2] controls hash, KEYS[3] audit stream (all of one firm)
    ARGV[1] "on" | "off", ARGV[2] scope, ARGV[3] factor in millionths, 1..1000000
    ('' for off), ARGV[4] who, ARGV[5] why, ARGV[6] audit stream max length
  Output: {code, previous factor in millionths or nil, server time ms}
    Codes: OK, UNKNOWN_NODE (on for a scope the policy does not have),
    INVALID_ORDER (factor not a whole number of millionths in 1..1000000)
  Audit record: op stress_on | stress_off, scope, f, prev, by, why, code.
]]
--- @include "common"

local policy_key, controls_key, audit_key = KEYS[1], KEYS[2], KEYS[3]
local op, scope, f, who, why, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]

local field = 'x|' .. scope
local raw = rcall('HGET', controls_key, field)
local prev = raw and cmsgpack.unpack(raw).f or false
local now = now_ms()

local function done(code)
  audit(audit_key, maxlen, {op = 'stress_' .. op, scope = scope, f = f or false, prev = prev,
    by = who, why = why, code = code})
  return {code, prev, now}
end

if op == 'off' then
  rcall('HDEL', controls_key, field)
  return done(R.OK)
end
if op ~= 'on' then
  return redis.error_reply('setStress: unknown op ' .. op)
end
if rcall('HEXISTS', policy_key, scope) == 0 then
  return done(R.UNKNOWN_NODE)
end
if not f or f < 1 or f > 1000000 or f ~= math.floor(f) then
  return done(R.INVALID_ORDER)
end
rcall('HSET', controls_key, field, cmsgpack.pack({f = f, by = who, why = why, t = now}))
return done(R.OK)
