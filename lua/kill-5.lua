--[[
  Set or clear a kill switch for one scope of one firm. A kill blocks every
  new order under the scope on the very next decision (reserve-n.lua and
  replace-11.lua read the kills hash and the global key) and returns the ids
  of the open orders under the scope so the caller can cancel them.
  The global scope is the plain string key KEYS[3]; its existence alone stops
  trading, so ops can also set it with redis-cli. Its who/when are kept in
  the kills hash under "global".
  A kill by a system: identity (an automatic trigger) is recorded with
  auto = 1. Lifting a kill takes a reason and a person: never a system:
  identity, and never the identity that set an automatic kill.
  Input:
    KEYS[1] policy hash, KEYS[2] kills hash, KEYS[3] global kill key,
    KEYS[4] open-order index, KEYS[5] audit stream (all of one firm, but KEYS[3]
    in single-instance mode)
    ARGV[1] "kill" | "unkill"
    ARGV[2] scope: "global" or "<kind>:<id>" of this firm
    ARGV[3] who, ARGV[4] why, ARGV[5] audit stream max length
    ARGV[6] firm id
  Output: {code, 1 if the switch was already in the asked state, open order id...}
    Codes: OK, UNKNOWN_NODE (kill of a scope this firm's policy does not have),
    REENABLE_REFUSED (unkill without a reason, by a system identity, or by the
    identity of an automatic kill)
]]
--- @include "common"

local policy_key, kills_key, global_key, open_key, audit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op, scope, who, why, maxlen, firm = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

-- Tags a record with the firm and the desk (account, strategy, trader) the
-- switch sits on, so that a reader scoped to some desks can pick its own.
local function about(r)
  local kind, id = string.match(scope, '^([^:]*):(.*)$')
  if not kind then return r end
  r.firm = firm
  if kind == 'desk' then
    r.desk = id
  elseif kind == 'account' then
    local rec = rcall('HGET', policy_key, scope)
    r.account = id
    r.desk = rec and string.match(cmsgpack.unpack(rec).p or '', '^desk:(.*)$') or nil
  elseif kind == 'strategy' or kind == 'trader' then
    r[kind] = id
  end
  return r
end

if op == 'kill' and scope ~= 'global' and rcall('HEXISTS', policy_key, scope) == 0 then
  audit(audit_key, maxlen, about({op = op, scope = scope, by = who, why = why,
    code = R.UNKNOWN_NODE}))
  return {R.UNKNOWN_NODE, 0}
end

local system = string.sub(who, 1, 7) == 'system:'
if op == 'unkill' then
  local raw = rcall('HGET', kills_key, scope)
  local rec = raw and cmsgpack.unpack(raw) or {}
  if not string.find(why, '%S') or system or (rec.auto == 1 and rec.by == who) then
    audit(audit_key, maxlen, about({op = op, scope = scope, by = who, why = why,
      code = R.REENABLE_REFUSED}))
    return {R.REENABLE_REFUSED, 1}
  end
end

local already
if op == 'kill' then
  already = 1 - rcall('HSETNX', kills_key, scope,
    cmsgpack.pack({by = who, why = why, t = now_ms(), auto = system and 1 or 0}))
  if scope == 'global' then rcall('SET', global_key, why) end
else
  local removed = rcall('HDEL', kills_key, scope)
  if scope == 'global' then removed = math.max(removed, rcall('DEL', global_key)) end
  already = 1 - removed
end
audit(audit_key, maxlen, about({op = op, scope = scope, by = who, why = why, code = R.OK,
  already = already}))

local result = {R.OK, already}
if op == 'kill' then
  -- Every open order has exactly one desk entry, so the firm's (and the
  -- global) orders are the desk entries; other scopes have their own.
  local whole = scope == 'global' or string.sub(scope, 1, 5) == 'firm:'
  local prefix = whole and 'desk:' or (scope .. '|')
  local members = rcall('ZRANGEBYLEX', open_key, '[' .. prefix, '[' .. prefix .. '\255')
  for _, m in ipairs(members) do result[#result + 1] = string.match(m, '|([^|]*)$') end
end
return result
