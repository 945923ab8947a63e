--[[
  Request an override of one limit at one node for a while. A decrease
  (below the policy value) is put in force at once; an increase stays
  pending until two people other than the requester approve it
  (decideOverride-4.lua). The request is checked against the live policy:
  the scope must be a node of it, the limit set at that node, the duration
  at most meta|ovmax. The id is "OV-<n>" from the registry's seq counter.
  Input:
    KEYS[1] policy hash, KEYS[2] controls hash, KEYS[3] overrides registry hash,
    KEYS[4] audit stream (all of one firm)
    ARGV[1] scope, ARGV[2] limit name, ARGV[3] value (a count, or minor units),
    ARGV[4] duration ms, ARGV[5] ticket, ARGV[6] who, ARGV[7] why ('' for none),
    ARGV[8] audit stream max length
  Output: {code, msgpack registry record, server time ms, 1 if now in force else 0},
    or {code, field, message} when refused (nothing changed but the audit record)
    Codes: OK, UNKNOWN_NODE (scope not in the policy), INVALID_ORDER (limit not
    set at the node, duration over the maximum, value equal to the policy value)
  Audit records: op override_request (id, scope, limit, value, old, dir, for_ms,
  ticket, by, why, code; refused with the message), then override_active (id, u,
  in_force) for a decrease.
]]
--- @include "common"
--- @include "overrides"

local policy_key, controls_key, overrides_key, audit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local scope, limit, value, for_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ticket, who, maxlen = ARGV[5], ARGV[6], ARGV[8]
-- false, not nil: a nil would drop the field from every record.
local why = ARGV[7] ~= '' and ARGV[7] or false

local function refuse(code, field, message)
  audit(audit_key, maxlen, {op = 'override_request', scope = scope, limit = limit,
    value = value, for_ms = for_ms, ticket = ticket, by = who, why = why, code = code,
    refused = field .. ': ' .. message})
  return {code, field, message}
end

local old, code, field, message = override_target(policy_key, scope, limit, for_ms)
if not old then return refuse(code, field, message) end
if value == old then
  return refuse(R.INVALID_ORDER, 'value',
    'equals the policy value of ' .. limit .. ' at ' .. scope .. '; there is nothing to override')
end

local now = now_ms()
local id = 'OV-' .. rcall('HINCRBY', overrides_key, 'seq', 1)
local rec = {id = id, scope = scope, limit = limit, value = value, old = old,
  dir = value < old and 'decrease' or 'increase', for_ms = for_ms, ticket = ticket,
  by = who, why = why, approvers = {}, st = 'pending', at = now}
audit(audit_key, maxlen, {op = 'override_request', id = id, scope = scope, limit = limit,
  value = value, old = old, dir = rec.dir, for_ms = for_ms, ticket = ticket, by = who,
  why = why, code = R.OK})

local placed = 0
if rec.dir == 'decrease' then
  rec.st, rec.approved_at, rec.u = 'active', now, now + for_ms
  placed = put_in_force(controls_key, rec, now) and 1 or 0
  audit(audit_key, maxlen, {op = 'override_active', id = id, scope = scope, limit = limit,
    value = value, u = rec.u, in_force = placed, by = who, code = R.OK})
end
rcall('HSET', overrides_key, id, cmsgpack.pack(rec))
return {R.OK, cmsgpack.pack(rec), now, placed}
