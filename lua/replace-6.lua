--[[
  Replace (modify) an open order: new total qty and price. Re-checks kill
  switches, policy nodes and entitlement, per-order caps on the new qty and
  notional, gross and net on the change of reservation, and the replace
  message windows; then moves the reservation by the difference. Open-order
  counts do not change. All-or-nothing, audited.
  Input:
    KEYS[1] policy hash, KEYS[2] kills hash, KEYS[3] global kill key,
    KEYS[4] order hash, KEYS[5] aggregates hash, KEYS[6] audit stream (all of one firm)
    ARGV[1] order id
    ARGV[2] new total qty (whole units; must exceed the qty already filled)
    ARGV[3] new price numerator, ARGV[4] new price scale
    ARGV[5] actor, ARGV[6] audit stream max length
  Output: decision array as reserve-7.lua; [6] is the new reserved notional.
    Codes: OK, UNKNOWN_ORDER, ORDER_CLOSED, INVALID_ORDER (qty not above filled qty),
    KILL_SWITCH, NO_POLICY, UNKNOWN_NODE, ROUTING_STALE, NOT_ENTITLED, MAX_ORDER_QTY,
    MAX_ORDER_NOTIONAL, GROSS_LIMIT, NET_LIMIT, MESSAGE_RATE
]]
--- @include "common"
--- @include "money"
--- @include "exposure"
--- @include "windows"
--- @include "checks"
--- @include "path"

local policy_key, kills_key, global_key = KEYS[1], KEYS[2], KEYS[3]
local order_key, agg_key, audit_key = KEYS[4], KEYS[5], KEYS[6]
local order_id, qty, pn, ps = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local actor, maxlen = ARGV[5], ARGV[6]

local function record(d, o)
  audit(audit_key, maxlen, {op = 'replace', order_id = order_id, by = actor, code = d[1],
    scope = d[2], limit = d[3], used = d[4], req = d[5], notional = d[6], qty = qty,
    pn = pn, ps = ps, old_qty = o and o.qty, old_pn = o and o.pn, old_ps = o and o.ps})
  return d
end

local o = load_order(order_key)
if not o then return record(reject_array(R.UNKNOWN_ORDER)) end
if o.st ~= 'open' then return record(reject_array(R.ORDER_CLOSED), o) end
if qty <= o.cum then
  local d = reject_array(R.INVALID_ORDER)
  d[4], d[5] = o.cum, qty
  return record(d, o)
end

local kill = killed(kills_key, global_key, o.scopes)
if kill then return record(reject_array(R.KILL_SWITCH, kill), o) end
local path, rej = load_path(policy_key, agg_key, o.scopes, 'replace')
if rej then return record(rej, o) end

local reserved = notional(qty - o.cum, pn, ps, o.mu)
local delta = reserved - o.res
local now = needs_time(path) and now_ms() or 0
local out = evaluate(path, {qty = qty, order_notional = notional(qty, pn, ps, o.mu),
  delta = delta, side = o.side, opens = 0, now = now}, {1, 2, 3, 4, 5, 6})
local d = decision(out, reserved)
if out.reject then return record(d, o) end

for _, nd in ipairs(path) do
  nd.agg[open_ix(o.side)] = nd.agg[open_ix(o.side)] + delta
end
count_messages(path, now)
write_nodes(agg_key, o.scopes, path_aggs(path))
rcall('HSET', order_key, 'qty', qty, 'pn', pn, 'ps', ps, 'res', reserved)
return record(d, o)
