--[[
  Approve, reject or cancel an override request.
  approve: only a pending request, never by its requester, never twice by one
    person; the second approval puts it in force from now for its duration,
    after checking it against the live policy again (scope, limit, maximum
    duration). A later request for the same limit already in force is kept.
  reject: a pending request, by anyone but its requester, with a reason.
  cancel: a pending or still-running request, by its requester only; a
    running one leaves force at once.
  Input:
    KEYS[1] policy hash, KEYS[2] controls hash, KEYS[3] overrides registry hash,
    KEYS[4] audit stream (all of one firm)
    ARGV[1] override id ("OV-<n>"), ARGV[2] "approve" | "reject" | "cancel",
    ARGV[3] who, ARGV[4] why ('' for none), ARGV[5] audit stream max length
  Output: {code, msgpack registry record, server time ms, 1 if now in force else 0},
    or {code, field, message} when refused (nothing changed but the audit record;
    field "id": no such override, "state": not in a state for this step,
    "by": not a person who may take it)
    Codes: OK, UNKNOWN_NODE (the scope left the policy before the second
    approval), INVALID_ORDER (any other refusal)
  Audit records: op override_approve | override_reject | override_cancel (id,
  scope, limit, by, why, approvals, code; refused with the message), and
  override_active (id, u, in_force) when the second approval puts it in force.
]]
--- @include "common"
--- @include "overrides"

local policy_key, controls_key, overrides_key, audit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, op, who, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local why = ARGV[4] ~= '' and ARGV[4] or false

local blob = rcall('HGET', overrides_key, id)
local rec = blob and cmsgpack.unpack(blob) or {}

local function note(code, extra)
  local r = {op = 'override_' .. op, id = id, scope = rec.scope or false,
    limit = rec.limit or false, by = who, why = why, approvals = #(rec.approvers or {}),
    code = code}
  for k, v in pairs(extra or {}) do r[k] = v end
  audit(audit_key, maxlen, r)
end

local function refuse(field, message, code)
  code = code or R.INVALID_ORDER
  note(code, {refused = field .. ': ' .. message})
  return {code, field, message}
end

if not blob then return refuse('id', id .. ': no such override') end
local now = now_ms()

if op == 'cancel' then
  if who ~= rec.by then
    return refuse('by', 'only its requester ' .. rec.by .. ' may cancel ' .. id)
  end
  if rec.st == 'active' and now < rec.u then
    take_out_of_force(controls_key, rec, now)
  elseif rec.st ~= 'pending' then
    local what = rec.st == 'active' and 'expired' or rec.st
    return refuse('state', id .. ' is ' .. what .. '; only a pending or running one can be cancelled')
  end
elseif rec.st ~= 'pending' then
  return refuse('state', id .. ' is ' .. rec.st .. ', not pending')
elseif who == rec.by then
  local instead = op == 'approve' and 'someone else must approve it'
    or 'its requester cancels it instead'
  return refuse('by', who .. ' requested ' .. id .. '; ' .. instead)
end

if op == 'reject' or op == 'cancel' then
  rec.st = op == 'reject' and 'rejected' or 'cancelled'
  rec.dby, rec.dwhy, rec.dat = who, why, now
  rcall('HSET', overrides_key, id, cmsgpack.pack(rec))
  note(R.OK)
  return {R.OK, cmsgpack.pack(rec), now, 0}
end

if op ~= 'approve' then
  return redis.error_reply('decideOverride: unknown op ' .. op)
end
for _, a in ipairs(rec.approvers) do
  if a == who then
    return refuse('by', who .. ' already approved ' .. id .. '; the second approval must come from someone else')
  end
end
local activates = #rec.approvers + 1 >= 2
if activates then
  local old, code, field, message = override_target(policy_key, rec.scope, rec.limit, rec.for_ms)
  if not old then return refuse(field, message, code) end
end
rec.approvers[#rec.approvers + 1] = who
note(R.OK)
local placed = 0
if activates then
  rec.st, rec.approved_at, rec.u = 'active', now, now + rec.for_ms
  placed = put_in_force(controls_key, rec, now) and 1 or 0
  audit(audit_key, maxlen, {op = 'override_active', id = id, scope = rec.scope,
    limit = rec.limit, value = rec.value, u = rec.u, in_force = placed, by = who,
    approvers = rec.approvers, code = R.OK})
end
rcall('HSET', overrides_key, id, cmsgpack.pack(rec))
return {R.OK, cmsgpack.pack(rec), now, placed}
