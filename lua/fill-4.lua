--[[
  Record a fill (partial or full): moves exposure from reserved to filled on
  all five nodes. The filled notional is ceil(fill qty * fill price); the
  reservation becomes ceil(leaves * order price). A full fill closes the
  order. A fill id seen before changes nothing. A fill on a closed order, or
  beyond the order qty, is still recorded: it is exposure the firm has.
  Input:
    KEYS[1] order hash, KEYS[2] aggregates hash, KEYS[3] open-order index, KEYS[4] audit stream
    ARGV[1] order id, ARGV[2] fill id, ARGV[3] fill qty (whole units),
    ARGV[4] fill price numerator, ARGV[5] fill price scale, ARGV[6] actor,
    ARGV[7] audit stream max length
  Output: {code, leaves qty, cum qty, reserved notional, fill notional,
           1 if the fill id was seen before, 1 if the fill went beyond the order qty}
    Codes: OK, UNKNOWN_ORDER
]]
--- @include "common"
--- @include "money"
--- @include "exposure"
--- @include "path"

local order_key, agg_key, open_key, audit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local order_id, fill_id = ARGV[1], ARGV[2]
local fq, pn, ps = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local actor, maxlen = ARGV[6], ARGV[7]

local o = load_order(order_key)
if not o then
  audit(audit_key, maxlen, {op = 'fill', order_id = order_id, fill = fill_id, by = actor,
    code = R.UNKNOWN_ORDER})
  return {R.UNKNOWN_ORDER, 0, 0, 0, 0, 0, 0}
end
if rcall('HSETNX', order_key, 'f|' .. fill_id, 1) == 0 then
  return {R.OK, math.max(o.qty - o.cum, 0), o.cum, o.res, 0, 1, 0}
end

local amount = notional(fq, pn, ps, o.mu)
local cum = o.cum + fq
local leaves = math.max(o.qty - cum, 0)
local reserved = o.res
local closes = o.st == 'open' and leaves == 0
if o.st == 'open' then reserved = notional(leaves, o.pn, o.ps, o.mu) end
local aggs = read_nodes(agg_key, o.scopes)
for _, a in ipairs(aggs) do
  a[open_ix(o.side)] = a[open_ix(o.side)] + reserved - o.res
  a[filled_ix(o.side)] = a[filled_ix(o.side)] + amount
  if closes then a[5] = a[5] - 1 end
end
write_nodes(agg_key, o.scopes, aggs)
if closes then
  rcall('ZREM', open_key, unpack(open_members(o, order_id)))
  rcall('HSET', order_key, 'st', 'filled')
end
rcall('HSET', order_key, 'cum', cum, 'res', reserved, 'fn', o.fn + amount)
local over = cum > o.qty and 1 or 0
audit(audit_key, maxlen, {op = 'fill', order_id = order_id, fill = fill_id, by = actor,
  code = R.OK, qty = fq, pn = pn, ps = ps, notional = amount, leaves = leaves, over = over})
return {R.OK, leaves, cum, reserved, amount, 0, over}
