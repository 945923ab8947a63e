--[[
  Release what an order still has reserved: cancel confirmed, venue reject,
  expiry. Closes the order. Releasing a closed order changes nothing.
  Input:
    KEYS[1] order hash, KEYS[2] aggregates hash, KEYS[3] open-order index, KEYS[4] audit stream,
    KEYS[5] positions hash, KEYS[6] policy hash, KEYS[7] expiry index (all of one firm)
    ARGV[1] order id, ARGV[2] reason (free text, e.g. "cancelled"), ARGV[3] actor,
    ARGV[4] audit stream max length
  A released order is deleted after the policy's retention (includes/expiry.lua).
  Output: {code, released notional (minor units), 1 if the order was already closed}
    Codes: OK, UNKNOWN_ORDER
]]
--- @include "common"
--- @include "exposure"
--- @include "day"
--- @include "path"
--- @include "expiry"

local order_key, agg_key, open_key, audit_key, pos_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5]
local order_id, why, actor, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local o = load_order(order_key)
local result
if not o then
  result = {R.UNKNOWN_ORDER, 0, 0}
elseif o.st ~= 'open' then
  result = {R.OK, 0, 1}
else
  -- Only subtractions of what the order added: every result lies between zero
  -- and a sum already stored exactly, so no exact_add is needed here.
  local aggs = read_nodes(agg_key, o.scopes)
  for _, a in ipairs(aggs) do
    a[open_ix(o.side)] = a[open_ix(o.side)] - o.res
    a[5] = a[5] - 1
  end
  write_nodes(agg_key, o.scopes, aggs)
  local pos = read_positions(pos_key, o.scopes, o.sym)
  local oi = open_ix(o.side)
  for _, p in ipairs(pos) do
    p[oi] = p[oi] - o.res
    p[4 + oi] = p[4 + oi] - math.max(o.qty - o.cum, 0)
  end
  write_positions(pos_key, o.scopes, o.sym, pos)
  rcall('ZREM', open_key, unpack(open_members(o, order_id)))
  rcall('HSET', order_key, 'st', 'released', 'res', 0, 'why', why)
  -- Time in force hook: out of the expiry index, kept for the retention.
  close_order(KEYS[6], KEYS[7], order_key)
  result = {R.OK, o.res, 0}
end
local r = {op = 'release', order_id = order_id, by = actor, why = why,
  code = result[1], released = result[2], already = result[3]}
audit(audit_key, maxlen, o and about(r, o.scopes, o.sym, o.ids) or r)
return result
