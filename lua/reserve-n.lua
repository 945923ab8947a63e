--[[
  Pre-trade check and reservation of new orders, all-or-nothing: one order,
  or a basket whose legs are reserved together or not at all. Every order
  takes this one path. Per leg, in order: idempotency, kill switches, policy
  nodes and entitlement (trader, strategy, symbol, venue), symbol tier,
  strategy and account state, symbol halt, reference price and collar,
  duplicate-order guard, reduce-only, then the limit checks of
  includes/checks.lua. Legs are decided in turn against the state the legs
  before them would leave; a basket then checks max_basket_notional at every
  node its legs pass. Nothing is written unless every leg passes. Every
  decision is appended to the audit stream in this same call.
  Input:
    KEYS[1] policy hash, KEYS[2] kills hash, KEYS[3] global kill key (plain in
    single-instance mode, firm mirror on a cluster), KEYS[4] aggregates hash,
    KEYS[5] open-order index, KEYS[6] audit stream, KEYS[7] controls hash,
    KEYS[8] reference prices hash, KEYS[9] positions hash, KEYS[10] expiry index
    (all of one firm), then per leg: the order hash and the duplicate-guard key
    ARGV[1] actor, ARGV[2] audit stream max length, ARGV[3] how long a
    rejected single order id is remembered (ms), ARGV[4] basket id ("" for a
    single order), then per leg 16 fields: order id, firm, desk (caller's
    routing, verified here), account, strategy, trader, symbol, side, qty
    (whole units), price numerator, price scale (price = num / 10^scale),
    fingerprint of the order fields (idempotency), venue ("" for none),
    time in force (DAY, GTC, GTD, IOC, FOK), GTD's expire time in ms ("" otherwise),
    reduce-only flag of the order ("1", or "" for none)
  Before deciding, the call retires up to EXPIRE_PER_CALL due orders of the
  firm (includes/expiry.lua).
  Output: for a single order, the decision array
    [1] code: OK or a reject reason (see ledger/reasons.py)
    [2] scope that decided (e.g. "desk:EQ-CASH") or nil
    [3] limit, [4] used, [5] requested (minor units, counts, bps or ms) or nil
    [6] order notional, minor units
    [7] 1 if this is the stored decision of an earlier identical call
    [8] number of shadow breaches, then 5 fields each: code, scope, limit, used, requested
    then, on a replay only: the order's state now (open, filled, released,
    rejected) and the release reason ("" if none)
  For a basket: {code, failing leg (1-based, 0 for none), then the decision
    arrays of the legs decided, the failing one last (a leg refused before
    any was decided, DUPLICATE_ORDER_ID, comes alone)}; BASKET_LIMIT has leg
    0 and its scope, limit, used, requested in a last array.
    Codes: OK, KILL_SWITCH, NO_POLICY, UNKNOWN_NODE, ROUTING_STALE, NOT_ENTITLED,
    RISK_UNAVAILABLE (audit.require_archive and the archive is behind; not audited),
    UNKNOWN_SYMBOL, STRATEGY_DISABLED, SYMBOL_HALTED, REFERENCE_PRICE_STALE,
    PRICE_COLLAR, DUPLICATE_ORDER_ID, DUPLICATE_ORDER, REDUCE_ONLY, MAX_ORDER_QTY,
    MAX_ORDER_NOTIONAL, OPEN_ORDERS_LIMIT, GROSS_LIMIT, NET_LIMIT, CONCENTRATION_LIMIT,
    DAILY_LOSS_LIMIT, MESSAGE_RATE, CANCEL_RATIO, BASKET_LIMIT, INVALID_ORDER (a stored
    sum would pass 2^53 - 1, or an expire time not after server time: refused,
    not remembered, the message last)
]]
--- @include "common"
--- @include "money"
--- @include "exposure"
--- @include "windows"
--- @include "day"
--- @include "controls"
--- @include "checks"
--- @include "path"
--- @include "deviation"
--- @include "prices"
--- @include "expiry"

local policy_key, kills_key, global_key, agg_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local open_key, audit_key, controls_key, prices_key, pos_key = KEYS[5], KEYS[6], KEYS[7],
  KEYS[8], KEYS[9]
local actor, maxlen, reject_ttl, basket = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local STRIDE = 16
local nlegs = (#ARGV - 4) / STRIDE
local now = now_ms()
-- Time in force (includes/expiry.lua): the firm's expiry index and what retiring touches.
local life = {policy = policy_key, agg = agg_key, open = open_key, pos = pos_key,
  audit = audit_key, maxlen = maxlen, exp = KEYS[10]}

-- State read once and shared by the legs: node arrays by scope, positions by
-- "scope|symbol"; what a leg reserves is applied here for the next leg to see.
local nodes, positions, fresh_dups = {}, {}, {}

local function cached(store, names, read)
  local missing, idx = {}, {}
  for i, n in ipairs(names) do
    if store[n] == nil then
      missing[#missing + 1] = n
      idx[#idx + 1] = i
    end
  end
  if #missing > 0 then
    local got = read(missing)
    for j, n in ipairs(missing) do store[n] = got[j] end
  end
  local out = {}
  for i, n in ipairs(names) do out[i] = store[n] end
  return out
end

local function leg_of(i)
  local b = 4 + (i - 1) * STRIDE
  local a = ARGV
  return {i = i, id = a[b + 1], scopes = {'firm:' .. a[b + 2], 'desk:' .. a[b + 3],
    'account:' .. a[b + 4], 'strategy:' .. a[b + 5], 'trader:' .. a[b + 6]},
    ids = {a[b + 2], a[b + 3], a[b + 4], a[b + 5], a[b + 6]}, sym = a[b + 7], side = a[b + 8],
    qty = tonumber(a[b + 9]), pn = tonumber(a[b + 10]), ps = tonumber(a[b + 11]),
    fp = a[b + 12], venue = a[b + 13], order_key = KEYS[9 + 2 * i], dup_key = KEYS[10 + 2 * i],
    tif = a[b + 14], exp = a[b + 15], ro = a[b + 16] == '1'}
end

-- The duplicate window of a path: the longest any node sets, and that node.
local function dup_window(path)
  local w, at = 0, nil
  for _, nd in ipairs(path) do
    local x = nd.l.duplicate_window_ms
    if x and x > w then w, at = x, nd end
  end
  return w, at
end

-- Decides one leg; on accept applies it to the shared state and returns the
-- decision and what the commit must write.
local function decide(leg)
  local s = leg.scopes
  -- Time in force hook: a GTD already due is refused, not remembered.
  local bad_tif = tif_reject(leg.tif, leg.exp, now)
  if bad_tif then return bad_tif, nil, true end
  local kill = killed(kills_key, global_key, s)
  if kill then return reject_array(R.KILL_SWITCH, kill) end
  local info, rej = load_path(policy_key, s, leg.sym, leg.venue)
  if rej then return rej, nil, true end
  local ctl = read_controls(controls_key, s)
  for _, i in ipairs({4, 3}) do
    if state_of(ctl, i, info.recs[i]) == 'disabled' then
      return reject_array(R.STRATEGY_DISABLED, s[i])
    end
  end
  local mult = info.tier and info.tier.m
  local amount = notional(leg.qty, leg.pn, leg.ps, info.mu, mult)
  -- With a multiplier the notional may leave the exact range: refused, not remembered.
  if inexact then return inexact_reject(0), nil, true end
  local bad = price_checks(prices_key, leg.sym, info.tier, info.px, leg.pn, leg.ps, now)
  if bad then
    bad[6] = amount
    return bad
  end
  local aggs = cached(nodes, s, function(m) return read_nodes(agg_key, m) end)
  local pkeys = {}
  for i = 1, 5 do pkeys[i] = s[i] .. '|' .. leg.sym end
  local pos = cached(positions, pkeys, function(m)
    local v = rcall('HMGET', pos_key, unpack(m))
    local out = {}
    for j = 1, #m do out[j] = v[j] and cmsgpack.unpack(v[j]) or {0, 0, 0, 0, 0, 0, 0} end
    return out
  end)
  local path = build_path(s, info, aggs, ctl, 'new', now)
  for i = 1, 5 do path[i].pos = pos[i] end

  local out = {shadow = {}}
  local window, wnode = dup_window(path)
  if window > 0 and (fresh_dups[leg.dup_key] or rcall('EXISTS', leg.dup_key) == 1)
      and breach(out, wnode, 'duplicate_window_ms', R.DUPLICATE_ORDER, window, 0, 0) then
    return decision(out, amount)
  end
  for _, i in ipairs({4, 3}) do
    if state_of(ctl, i, info.recs[i]) == 'reduce_only' and not reduces(pos[i], leg.side, leg.qty) then
      -- Through decision(): shadow breaches seen so far stay in the answer.
      out.reject = {R.REDUCE_ONLY, s[i], false, pos[i][7], leg.qty}
      return decision(out, amount)
    end
  end
  -- The order's own reduce-only flag: it must shrink the position at every node of its path.
  local at = leg.ro and grows_at(pos, leg.side, leg.qty)
  if at then
    out.reject = {R.REDUCE_ONLY, s[at], false, pos[at][7], leg.qty}
    return decision(out, amount)
  end
  local side, qty = leg.side, leg.qty
  out = evaluate(path, {qty = qty, order_notional = amount, delta = amount, side = side,
    opens = 1, now = now, day_meta = info.day, tier = info.tier,
    grows = function(nd) return not reduces(nd.pos, side, qty) end}, ALL_KINDS, out)
  local d = decision(out, amount)
  if out.reject then return d end
  leg.m = mult

  local oi = open_ix(side)
  for i, nd in ipairs(path) do
    nd.agg[oi] = exact_add(nd.agg[oi], amount, NODE_SUMS[oi], nd.scope)
    nd.agg[5] = exact_add(nd.agg[5], 1, NODE_SUMS[5], nd.scope)
    local p = pos[i]
    p[oi] = exact_add(p[oi], amount, POSITION_SUMS[oi], pkeys[i])
    p[4 + oi] = exact_add(p[4 + oi], qty, POSITION_SUMS[4 + oi], pkeys[i])
  end
  -- Refused, not remembered: the shared state it touched is never written.
  if inexact then return inexact_reject(amount), nil, true end
  count_messages(path, now, 9)
  if window > 0 then fresh_dups[leg.dup_key] = window end
  return d, {leg = leg, mu = info.mu, amount = amount, d = d, path = path,
    due = due_of(policy_key, leg.tif, leg.exp, info.day, now)}
end

local function audit_leg(leg, d)
  audit(audit_key, maxlen, about({op = 'reserve', order_id = leg.id, by = actor, code = d[1],
    scope = d[2], limit = d[3], used = d[4], req = d[5], notional = d[6], shadow = d[8],
    side = leg.side, qty = leg.qty, pn = leg.pn, ps = leg.ps, venue = leg.venue,
    reduce_only = leg.ro or nil, basket = basket ~= '' and basket or nil}, leg.scopes, leg.sym,
    leg.ids))
end

local function commit(plans)
  local members, agg_args, pos_args = {}, {}, {}
  for _, plan in ipairs(plans) do
    local leg = plan.leg
    for i = 2, 5 do
      members[#members + 1] = 0
      -- No firm entry: the whole index is the firm's (see kill-5.lua).
      members[#members + 1] = leg.scopes[i] .. '|' .. leg.id
    end
    rcall('HSET', leg.order_key, 'fp', leg.fp, 'dec', cmsgpack.pack(plan.d), 'st', 'open',
      'o', cmsgpack.pack({leg.ids[1], leg.ids[2], leg.ids[3], leg.ids[4], leg.ids[5], leg.sym,
        leg.side, plan.mu, leg.venue, leg.m}),
      'qty', leg.qty, 'pn', leg.pn, 'ps', leg.ps, 'cum', 0, 'res', plan.amount, 'fn', 0)
    if basket ~= '' then rcall('HSET', leg.order_key, 'bk', basket) end
    if leg.ro then rcall('HSET', leg.order_key, 'ro', 1) end
    -- Time in force hook: DAY is the default and is not stored.
    if leg.tif ~= 'DAY' then rcall('HSET', leg.order_key, 'tif', leg.tif) end
    if plan.due then rcall('ZADD', life.exp, plan.due, leg.order_key) end
    if fresh_dups[leg.dup_key] then
      rcall('SET', leg.dup_key, leg.id, 'PX', fresh_dups[leg.dup_key])
    end
  end
  for scope, a in pairs(nodes) do
    agg_args[#agg_args + 1] = scope
    agg_args[#agg_args + 1] = cmsgpack.pack(a)
  end
  for field, p in pairs(positions) do
    pos_args[#pos_args + 1] = field
    pos_args[#pos_args + 1] = cmsgpack.pack(p)
  end
  rcall('HSET', agg_key, unpack(agg_args))
  rcall('HSET', pos_key, unpack(pos_args))
  rcall('ZADD', open_key, unpack(members))
end

-- The stored first decision of an order id, marked replayed, followed by what
-- the order is now (its state and, once released, why): a retry must never
-- read a dead order as live.
local function replayed(dec, st, why)
  local d = cmsgpack.unpack(dec)
  d[7] = 1
  d[#d + 1] = st
  d[#d + 1] = why or ''
  return d
end

-- Time in force hook: every decision retires a bounded number of due orders first.
expire_due(life, now, EXPIRE_PER_CALL)

-- A single order: rejects are remembered with the order id, except those a
-- policy load or a routing refresh may cure.
if basket == '' then
  local leg = leg_of(1)
  local seen = rcall('HMGET', leg.order_key, 'fp', 'dec', 'st', 'why')
  if seen[1] then
    if seen[1] == leg.fp then
      return replayed(seen[2], seen[3], seen[4])
    end
    local d = reject_array(R.DUPLICATE_ORDER_ID)
    audit_leg(leg, d)
    return d
  end
  -- audit.require_archive: refused, not remembered and not recorded (the trail is full).
  if archive_behind(policy_key, audit_key, maxlen) then
    return reject_array(R.RISK_UNAVAILABLE, leg.scopes[1])
  end
  local d, plan, transient = decide(leg)
  if plan then
    commit({plan})
  elseif not transient then
    rcall('HSET', leg.order_key, 'fp', leg.fp, 'dec', cmsgpack.pack(d), 'st', 'rejected')
    rcall('PEXPIRE', leg.order_key, reject_ttl)
  end
  audit_leg(leg, d)
  return d
end

-- A basket: a leg id seen before with the same fields replays the whole
-- basket only if every leg was reserved by it; a rejected basket leaves
-- nothing behind, so a retry is decided afresh.
local legs, stored, replays = {}, {}, 0
for i = 1, nlegs do
  legs[i] = leg_of(i)
  local seen = rcall('HMGET', legs[i].order_key, 'fp', 'dec', 'bk', 'st', 'why')
  if seen[1] then
    -- Only an order this very basket reserved replays; any other use of the id is a clash.
    if seen[1] ~= legs[i].fp or seen[3] ~= basket then
      local d = reject_array(R.DUPLICATE_ORDER_ID)
      audit(audit_key, maxlen, about({op = 'basket', basket = basket, by = actor, code = d[1],
        leg = i, order_id = legs[i].id}, legs[i].scopes, legs[i].sym))
      return {d[1], i, d}
    end
    stored[i] = replayed(seen[2], seen[4], seen[5])
    replays = replays + 1
  end
end
if replays == nlegs then
  local out = {R.OK, 0}
  for i = 1, nlegs do out[2 + i] = stored[i] end
  return out
end
if archive_behind(policy_key, audit_key, maxlen) then return {R.RISK_UNAVAILABLE, 0} end

local plans, decisions = {}, {}
-- A basket record names its failing leg's nodes, or (leg 0) the firm and every desk of its legs.
local function about_basket(record, leg)
  if leg > 0 then return about(record, legs[leg].scopes, legs[leg].sym) end
  local desks, seen = {}, {}
  for _, l in ipairs(legs) do
    if not seen[l.ids[2]] then
      seen[l.ids[2]] = true
      desks[#desks + 1] = l.ids[2]
    end
  end
  record.firm, record.desks = legs[1].ids[1], desks
  return record
end
local function basket_reject(code, leg, d, extra)
  audit(audit_key, maxlen, about_basket({op = 'basket', basket = basket, by = actor, code = code,
    leg = leg, scope = d and d[2], limit = d and d[3], used = d and d[4], req = d and d[5],
    legs = nlegs, order_id = leg > 0 and legs[leg].id or nil}, leg))
  local out = {code, leg}
  for i, x in ipairs(decisions) do out[2 + i] = x end
  if extra then out[#out + 1] = extra end
  return out
end
for i = 1, nlegs do
  if stored[i] then
    -- Part of an earlier basket: these ids cannot join a new one.
    decisions[i] = reject_array(R.DUPLICATE_ORDER_ID)
    return basket_reject(R.DUPLICATE_ORDER_ID, i, decisions[i])
  end
  local d, plan = decide(legs[i])
  decisions[i] = d
  if not plan then return basket_reject(d[1], i, d) end
  plans[i] = plan
end

-- max_basket_notional: the basket's total through each node its legs pass.
local totals, where = {}, {}
for _, plan in ipairs(plans) do
  for _, nd in ipairs(plan.path) do
    totals[nd.scope] = exact_add(totals[nd.scope] or 0, plan.amount, 'basket total', nd.scope)
    where[nd.scope] = nd
  end
end
if inexact then
  local d = inexact_reject(0)
  return basket_reject(R.INVALID_ORDER, 0, d, d)
end
local out = {shadow = {}}
for _, plan in ipairs(plans) do
  for _, nd in ipairs(plan.path) do
    local lim = nd.l.max_basket_notional
    if lim and totals[nd.scope] > lim and not out.reject then
      breach(out, nd, 'max_basket_notional', R.BASKET_LIMIT, lim, 0, totals[nd.scope])
    end
  end
end
if out.reject then
  return basket_reject(R.BASKET_LIMIT, 0, out.reject, out.reject)
end
commit(plans)
for i, plan in ipairs(plans) do audit_leg(plan.leg, plan.d) end
-- A shadow basket limit is evaluated, not enforced: the audit keeps what it saw.
audit(audit_key, maxlen, about_basket({op = 'basket', basket = basket, by = actor, code = R.OK,
  leg = 0, legs = nlegs, shadow = #out.shadow > 0 and out.shadow or nil}, 0))
local result = {R.OK, 0}
for i = 1, nlegs do result[2 + i] = decisions[i] end
return result
