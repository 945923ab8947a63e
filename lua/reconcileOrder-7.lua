--[[
  Repair one order to what the venue's (or the OMS's) drop copy says, for
  `ledger reconcile --apply`. This is the one path that records an order
  without the pre-trade checks: the order already exists at the venue, so
  refusing it would only hide exposure the firm has. It is always recorded,
  marked "rc" on the order hash and audited as op "reconciled" with who and
  why; the caller reports the nodes it puts over a limit, and `ledger check`
  flags them like any other breach.
  In one call: an order the ledger lacks (or only remembers as rejected) is
  created; qty and price become the venue's; fills whose id the ledger has
  not seen are applied; the order is then open if the venue has it open and
  something is left, else filled (cum >= qty) or released ("reconciled").
  The five nodes' aggregates and positions move by the difference between
  what the order contributed before and after, so they stay the sums over
  the orders that `ledger check` verifies. An order it closes is kept for the
  policy's retention; one it leaves open is kept for good, and one it creates
  has no due time (a drop copy carries no time in force: includes/expiry.lua).
  Input:
    KEYS[1] order hash, KEYS[2] aggregates hash, KEYS[3] open-order index,
    KEYS[4] audit stream, KEYS[5] positions hash, KEYS[6] policy hash,
    KEYS[7] expiry index (all of one firm)
    ARGV[1] actor, ARGV[2] reason (free text), ARGV[3] audit stream max length,
    ARGV[4] order id, ARGV[5] venue status ("open" or "closed"),
    ARGV[6..10] firm, desk, account, strategy, trader (used only to create the order),
    ARGV[11] symbol, ARGV[12] side, ARGV[13] qty (whole units),
    ARGV[14] price numerator, ARGV[15] price scale, ARGV[16] fingerprint of the
    order fields (so that a client's retry of the order replays), ARGV[17] venue ("" for none),
    then per fill 4 fields: fill id, qty, price numerator, price scale
  Output: {code, 1 if the order was created, fills applied, state before ("" if
    none), state after, reserved notional after (minor units)}; INVALID_ORDER adds a message
    Codes: OK, NO_POLICY (no minor units to create the order with), INVALID_ORDER
    (a stored sum would pass 2^53 - 1: nothing is written)
]]
--- @include "common"
--- @include "money"
--- @include "exposure"
--- @include "day"
--- @include "path"
--- @include "expiry"

local order_key, agg_key, open_key, audit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pos_key, policy_key = KEYS[5], KEYS[6]
local actor, why, maxlen, order_id, venue_status = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local qty, pn, ps = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local FILLS_AT = 17

local o = load_order(order_key)
local created = 0
local before = ''
if o then
  before = o.st
else
  local meta = rcall('HMGET', policy_key, 'meta|mu', 's|' .. ARGV[11])
  local mu = tonumber(meta[1])
  if not mu then return {R.NO_POLICY, 0, 0, '', '', 0} end
  local tier = meta[2] and cmsgpack.unpack(meta[2])
  created = 1
  o = {st = 'none', sym = ARGV[11], side = ARGV[12], mu = mu, m = tier and tier.m,
    venue = ARGV[17], qty = qty,
    pn = pn, ps = ps, cum = 0, res = 0, fn = 0,
    scopes = {'firm:' .. ARGV[6], 'desk:' .. ARGV[7], 'account:' .. ARGV[8],
      'strategy:' .. ARGV[9], 'trader:' .. ARGV[10]}}
end

-- What an order adds to each of its nodes: {open notional, filled notional,
-- open orders, open qty, signed filled qty} (see views.check's sums).
local function contribution(st, res, fn, q, cum, side)
  local open = st == 'open'
  local signed = side == 'buy' and cum or -cum
  return {open and res or 0, fn, open and 1 or 0, open and math.max(q - cum, 0) or 0, signed}
end
local was = contribution(o.st, o.res, o.fn, o.qty, o.cum, o.side)

local cum, fn, applied, new_fills, seen = o.cum, o.fn, 0, {}, {}
for b = FILLS_AT, #ARGV - 1, 4 do
  local fill_id = ARGV[b + 1]
  if rcall('HEXISTS', order_key, 'f|' .. fill_id) == 0 and not seen[fill_id] then
    local fq = tonumber(ARGV[b + 2])
    cum = exact_add(cum, fq, 'filled qty', 'order ' .. order_id)
    fn = exact_add(fn, notional(fq, tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), o.mu, o.m),
      'filled notional', 'order ' .. order_id)
    seen[fill_id] = true
    new_fills[#new_fills + 1] = fill_id
    applied = applied + 1
  end
end

local st
if venue_status == 'open' and qty > cum then
  st = 'open'
elseif cum >= qty then
  st = 'filled'
else
  st = 'released'
end
local res = st == 'open' and notional(qty - cum, pn, ps, o.mu, o.m) or 0
local now = contribution(st, res, fn, qty, cum, o.side)

local oi, fi = open_ix(o.side), filled_ix(o.side)
local aggs = read_nodes(agg_key, o.scopes)
local pos = read_positions(pos_key, o.scopes, o.sym)
for i, a in ipairs(aggs) do
  local at = o.scopes[i] .. '|' .. o.sym
  a[oi] = exact_add(a[oi], now[1] - was[1], NODE_SUMS[oi], o.scopes[i])
  a[fi] = exact_add(a[fi], now[2] - was[2], NODE_SUMS[fi], o.scopes[i])
  a[5] = exact_add(a[5], now[3] - was[3], NODE_SUMS[5], o.scopes[i])
  local p = pos[i]
  p[oi] = exact_add(p[oi], now[1] - was[1], POSITION_SUMS[oi], at)
  p[fi] = exact_add(p[fi], now[2] - was[2], POSITION_SUMS[fi], at)
  p[4 + oi] = exact_add(p[4 + oi], now[4] - was[4], POSITION_SUMS[4 + oi], at)
  p[7] = exact_add(p[7], now[5] - was[5], POSITION_SUMS[7], at)
end
if inexact then
  return {R.INVALID_ORDER, 0, 0, before, before, o.res, inexact_message()}
end

write_nodes(agg_key, o.scopes, aggs)
write_positions(pos_key, o.scopes, o.sym, pos)
if was[3] == 1 and now[3] == 0 then
  rcall('ZREM', open_key, unpack(open_members(o, order_id)))
elseif was[3] == 0 and now[3] == 1 then
  local members = {}
  for _, m in ipairs(open_members(o, order_id)) do
    members[#members + 1] = 0
    members[#members + 1] = m
  end
  rcall('ZADD', open_key, unpack(members))
end
if created == 1 then
  local p = ARGV
  -- Stored as the order's first decision: a client retrying the order replays it.
  rcall('HSET', order_key, 'fp', p[16], 'dec',
    cmsgpack.pack({R.OK, false, false, false, false, notional(qty, pn, ps, o.mu, o.m), 0, 0}),
    'o', cmsgpack.pack({p[6], p[7], p[8], p[9], p[10], p[11], p[12], o.mu, p[17], o.m}))
  -- A remembered reject expires; a reconciled order must not.
  rcall('PERSIST', order_key)
end
for _, fill_id in ipairs(new_fills) do rcall('HSET', order_key, 'f|' .. fill_id, 1) end
rcall('HSET', order_key, 'st', st, 'qty', qty, 'pn', pn, 'ps', ps, 'cum', cum, 'res', res,
  'fn', fn, 'rc', 1)
if st == 'released' and before ~= 'released' then
  rcall('HSET', order_key, 'why', 'reconciled')
elseif st ~= 'released' then
  rcall('HDEL', order_key, 'why')
end
-- Time in force hook: closed, it is kept for the retention; open, for good.
if st == 'open' then rcall('PERSIST', order_key) else close_order(policy_key, KEYS[7], order_key) end

audit(audit_key, maxlen, about({op = 'reconciled', order_id = order_id, by = actor, why = why,
  code = R.OK, created = created, was = before ~= '' and before or false, st = st,
  fills = applied > 0 and new_fills or nil, qty = qty, pn = pn, ps = ps, reserved = res,
  side = o.side}, o.scopes, o.sym))
return {R.OK, created, applied, before, st, res}
