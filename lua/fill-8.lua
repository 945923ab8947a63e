--[[
  Record a fill (partial or full): moves exposure from reserved to filled on
  all five nodes and their positions in the symbol. The filled notional is
  ceil(fill qty * fill price); the reservation becomes ceil(leaves * order
  price). A full fill closes the order. A fill id seen before changes
  nothing. A fill on a closed order, or beyond the order qty, is still
  recorded: it is exposure the firm has.
  A fill may carry its realized P&L (the caller's, in minor units, signed);
  it adds to the day's P&L of every node (day.lua). A strategy with a fill
  throttle that sees more than trigger_count fills in its window is disabled
  on the spot: "s|strategy:ID" in the controls hash, by "system:fill-throttle",
  until a person re-enables it (lua/setState-3.lua).
  Input:
    KEYS[1] order hash, KEYS[2] aggregates hash, KEYS[3] open-order index,
    KEYS[4] audit stream, KEYS[5] positions hash, KEYS[6] policy hash,
    KEYS[7] controls hash, KEYS[8] expiry index (all of one firm)
    ARGV[1] order id, ARGV[2] fill id, ARGV[3] fill qty (whole units),
    ARGV[4] fill price numerator, ARGV[5] fill price scale, ARGV[6] actor,
    ARGV[7] audit stream max length, ARGV[8] realized P&L in minor units ("" for none)
  A fill that closes the order starts its retention; the first fill of an IOC
  or FOK order releases what it leaves open (includes/expiry.lua: audited as
  an expiry, reserved notional 0 in the answer).
  Output: {code, leaves qty, cum qty, reserved notional, fill notional,
           1 if the fill id was seen before, 1 if the fill went beyond the order qty,
           1 if this fill disabled the strategy}; INVALID_ORDER adds a message
    Codes: OK, UNKNOWN_ORDER, INVALID_ORDER (a stored sum would pass 2^53 - 1:
    nothing is written, the fill id included, so the fill can be sent again)
]]
--- @include "common"
--- @include "money"
--- @include "exposure"
--- @include "windows"
--- @include "day"
--- @include "path"
--- @include "expiry"

local order_key, agg_key, open_key, audit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pos_key, policy_key, controls_key = KEYS[5], KEYS[6], KEYS[7]
local order_id, fill_id = ARGV[1], ARGV[2]
local fq, pn, ps = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local actor, maxlen, pnl = ARGV[6], ARGV[7], tonumber(ARGV[8])

local o = load_order(order_key)
if not o then
  audit(audit_key, maxlen, {op = 'fill', order_id = order_id, fill = fill_id, by = actor,
    code = R.UNKNOWN_ORDER})
  return {R.UNKNOWN_ORDER, 0, 0, 0, 0, 0, 0, 0}
end
-- The fill id is written with the rest, below: a refused fill leaves no trace.
if rcall('HEXISTS', order_key, 'f|' .. fill_id) == 1 then
  return {R.OK, math.max(o.qty - o.cum, 0), o.cum, o.res, 0, 1, 0, 0}
end

local amount = notional(fq, pn, ps, o.mu, o.m)
local cum = exact_add(o.cum, fq, 'filled qty', 'order ' .. order_id)
local fn = exact_add(o.fn, amount, 'filled notional', 'order ' .. order_id)
local leaves = math.max(o.qty - cum, 0)
local reserved = o.res
local open = o.st == 'open'
local closes = open and leaves == 0
local open_qty_change = 0
if open then
  reserved = notional(leaves, o.pn, o.ps, o.mu, o.m)
  open_qty_change = leaves - math.max(o.qty - o.cum, 0)
end
local oi = open_ix(o.side)
local signed = o.side == 'buy' and fq or -fq
local now = now_ms()
local meta = rcall('HMGET', policy_key, 'meta|day', o.scopes[4], 'meta|lid')
local day = pnl and day_of(meta[1], now)
local aggs = read_nodes(agg_key, o.scopes)
local pos = read_positions(pos_key, o.scopes, o.sym)
for i, a in ipairs(aggs) do
  local at = o.scopes[i] .. '|' .. o.sym
  a[oi] = exact_add(a[oi], reserved - o.res, NODE_SUMS[oi], o.scopes[i])
  a[oi + 2] = exact_add(a[oi + 2], amount, NODE_SUMS[oi + 2], o.scopes[i])
  if closes then a[5] = a[5] - 1 end
  if pnl then
    -- Slot 6 (rings) must exist for the array to stay an array when packed.
    a[6] = a[6] or {}
    a[8] = exact_add(day_pnl(a, day), pnl, "today's realized P&L", o.scopes[i])
    a[7] = day
  end
  local p = pos[i]
  p[oi] = exact_add(p[oi], reserved - o.res, POSITION_SUMS[oi], at)
  p[oi + 2] = exact_add(p[oi + 2], amount, POSITION_SUMS[oi + 2], at)
  p[4 + oi] = exact_add(p[4 + oi], open_qty_change, POSITION_SUMS[4 + oi], at)
  p[7] = exact_add(p[7], signed, POSITION_SUMS[7], at)
end
if inexact then
  audit(audit_key, maxlen, {op = 'fill', order_id = order_id, fill = fill_id, by = actor,
    code = R.INVALID_ORDER, qty = fq, pn = pn, ps = ps, why = inexact_message()})
  return {R.INVALID_ORDER, math.max(o.qty - o.cum, 0), o.cum, o.res, 0, 0, 0, 0,
    inexact_message()}
end
local tripped = 0
local strategy = meta[2] and policy_record(policy_key, meta[3], o.scopes[4], meta[2])
local ft = strategy and strategy.ft
if ft then
  local a = aggs[4]
  local rings = a[6] or {}
  rings[11] = ring_add(rings[11], ft.w, now)
  a[6] = rings
  local count = ring_count(rings[11], ft.w, now)
  if count > ft.n then
    local cause = count .. ' fills within ' .. (ft.w / 100) .. ' s (trigger ' .. ft.n .. ')'
    local field = 's|' .. o.scopes[4]
    local current = rcall('HGET', controls_key, field)
    -- Already disabled stays as it is (and keeps who did it); reduce-only is not enough.
    if not current or cmsgpack.unpack(current).st ~= 'disabled' then
      rcall('HSET', controls_key, field, cmsgpack.pack({st = 'disabled',
        by = 'system:fill-throttle', why = 'repeated executions', cause = cause, t = now,
        auto = 1}))
      tripped = 1
      audit(audit_key, maxlen, about({op = 'state_disable', scope = o.scopes[4],
        by = 'system:fill-throttle', why = 'repeated executions', cause = cause, auto = 1,
        order_id = order_id, fill = fill_id, code = R.OK}, o.scopes, o.sym, o.ids))
    end
  end
end
write_nodes(agg_key, o.scopes, aggs)
write_positions(pos_key, o.scopes, o.sym, pos)
-- The fill id with the rest: a refused fill (above) leaves no trace.
if closes then
  rcall('ZREM', open_key, unpack(open_members(o, order_id)))
  rcall('HSET', order_key, 'f|' .. fill_id, 1, 'cum', cum, 'res', reserved, 'fn', fn,
    'st', 'filled')
else
  rcall('HSET', order_key, 'f|' .. fill_id, 1, 'cum', cum, 'res', reserved, 'fn', fn)
end
local over = cum > o.qty and 1 or 0
audit(audit_key, maxlen, about({op = 'fill', order_id = order_id, fill = fill_id, by = actor,
  code = R.OK, qty = fq, pn = pn, ps = ps, notional = amount, leaves = leaves, over = over,
  pnl = pnl}, o.scopes, o.sym, o.ids))
-- Time in force hook.
if life_after_fill({policy = policy_key, agg = agg_key, open = open_key, pos = pos_key,
    audit = audit_key, maxlen = maxlen, exp = KEYS[8]}, order_key, open, closes, now) then
  reserved = 0
end
return {R.OK, leaves, cum, reserved, amount, 0, over, tripped}
