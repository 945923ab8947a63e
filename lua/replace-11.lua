--[[
  Replace (modify) an open order: new total qty and price. Re-checks kill
  switches, policy nodes and entitlement, strategy and account state, the
  symbol halt, reference price and collar on the new price, per-order caps on
  the new qty and notional, gross, net and concentration on the change of
  reservation, the daily loss and reduce-only (a replace that raises the qty
  adds exposure), and the replace message windows; then moves the
  reservation by the difference. Open-order counts do not change.
  All-or-nothing, audited.
  Input:
    KEYS[1] policy hash, KEYS[2] kills hash, KEYS[3] global kill key,
    KEYS[4] order hash, KEYS[5] aggregates hash, KEYS[6] audit stream,
    KEYS[7] controls hash, KEYS[8] reference prices hash, KEYS[9] positions hash,
    KEYS[10] open-order index, KEYS[11] expiry index (all of one firm)
    ARGV[1] order id
    ARGV[2] new total qty (whole units; must exceed the qty already filled)
    ARGV[3] new price numerator, ARGV[4] new price scale
    ARGV[5] actor, ARGV[6] audit stream max length,
    ARGV[7] new time in force ("" keeps the order's; DAY, GTC or GTD),
    ARGV[8] GTD's expire time in ms ("" otherwise),
    ARGV[9] "1" flags the order reduce-only ("" keeps the order's flag; a flag stays set)
  A reduce-only order (flagged now or before) must not grow the position at
  any node of its path as replaced (REDUCE_ONLY).
  Time in force (includes/expiry.lua): the call first retires up to
  EXPIRE_PER_CALL due orders of the firm, and this order if it is due
  (ORDER_CLOSED then). A new time in force sets a new due time: DAY the next
  roll, GTD its expire time, GTC none; IOC and FOK orders keep theirs.
  Output: decision array as reserve-n.lua; [6] is the new reserved notional.
    Codes: OK, UNKNOWN_ORDER, ORDER_CLOSED, INVALID_ORDER (qty not above filled qty, or
    a stored sum would pass 2^53 - 1, or a time in force that cannot stand: the message last),
    KILL_SWITCH, NO_POLICY, UNKNOWN_NODE, ROUTING_STALE, NOT_ENTITLED, UNKNOWN_SYMBOL,
    STRATEGY_DISABLED, SYMBOL_HALTED, REFERENCE_PRICE_STALE, PRICE_COLLAR, REDUCE_ONLY,
    MAX_ORDER_QTY, MAX_ORDER_NOTIONAL, GROSS_LIMIT, NET_LIMIT, CONCENTRATION_LIMIT,
    DAILY_LOSS_LIMIT, MESSAGE_RATE, RISK_UNAVAILABLE (audit.require_archive and the
    archive is behind; not audited)
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

local policy_key, kills_key, global_key = KEYS[1], KEYS[2], KEYS[3]
local order_key, agg_key, audit_key = KEYS[4], KEYS[5], KEYS[6]
local controls_key, prices_key, pos_key = KEYS[7], KEYS[8], KEYS[9]
local order_id, qty, pn, ps = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local actor, maxlen = ARGV[5], ARGV[6]
local new_tif, new_exp, set_ro = ARGV[7], ARGV[8], ARGV[9] == '1'

local function record(d, o)
  local r = {op = 'replace', order_id = order_id, by = actor, code = d[1],
    scope = d[2], limit = d[3], used = d[4], req = d[5], notional = d[6], qty = qty,
    pn = pn, ps = ps, old_qty = o and o.qty, old_pn = o and o.pn, old_ps = o and o.ps,
    reduce_only = (set_ro or (o and o.ro)) or nil}
  audit(audit_key, maxlen, o and about(r, o.scopes, o.sym, o.ids) or r)
  return d
end

-- audit.require_archive and the archive is behind: refused, nothing changed or recorded.
if archive_behind(policy_key, audit_key, maxlen) then return reject_array(R.RISK_UNAVAILABLE) end
-- Time in force hook: due orders go first, this one included.
local now = now_ms()
local life = {policy = policy_key, agg = agg_key, open = KEYS[10], pos = pos_key,
  audit = audit_key, maxlen = maxlen, exp = KEYS[11]}
expire_due(life, now, EXPIRE_PER_CALL)
retire_if_due(life, order_key, now)
local o = load_order(order_key)
if not o then return record(reject_array(R.UNKNOWN_ORDER)) end
if o.st ~= 'open' then return record(reject_array(R.ORDER_CLOSED), o) end
if new_tif ~= '' then
  local old_tif = rcall('HGET', order_key, 'tif')
  local bad = tif_reject(new_tif, new_exp, now)
  if not bad and (old_tif == 'IOC' or old_tif == 'FOK') then
    bad = {R.INVALID_ORDER, false, false, false, false, 0, 0, 0,
      'time_in_force: an ' .. old_tif .. ' order keeps its time in force; nothing changed'}
  end
  if bad then return record(bad, o) end
end
if qty <= o.cum then
  local d = reject_array(R.INVALID_ORDER)
  d[4], d[5] = o.cum, qty
  return record(d, o)
end

local s = o.scopes
local kill = killed(kills_key, global_key, s)
if kill then return record(reject_array(R.KILL_SWITCH, kill), o) end
local info, rej = load_path(policy_key, s, o.sym, o.venue)
if rej then return record(rej, o) end
local ctl = read_controls(controls_key, s)
local grows = qty > o.qty
for _, i in ipairs({4, 3}) do
  local st = state_of(ctl, i, info.recs[i])
  if st == 'disabled' then return record(reject_array(R.STRATEGY_DISABLED, s[i]), o) end
  if st == 'reduce_only' and grows then
    local d = reject_array(R.REDUCE_ONLY, s[i])
    d[4], d[5] = o.qty, qty
    return record(d, o)
  end
end
local bad = price_checks(prices_key, o.sym, info.tier, info.px, pn, ps, now)
if bad then return record(bad, o) end

local reserved = notional(qty - o.cum, pn, ps, o.mu, o.m)
local order_notional = notional(qty, pn, ps, o.mu, o.m)
if inexact then return record(inexact_reject(0), o) end
local delta = reserved - o.res
local aggs = read_nodes(agg_key, s)
local pos = read_positions(pos_key, s, o.sym)
local path = build_path(s, info, aggs, ctl, 'replace', now)
for i = 1, 5 do path[i].pos = pos[i] end
-- The order's own reduce-only flag: as replaced, it must shrink the position at every node.
local at = (set_ro or o.ro) and grows_at(pos, o.side, qty - o.qty)
if at then
  local d = reject_array(R.REDUCE_ONLY, s[at])
  d[4], d[5] = pos[at][7], qty
  return record(d, o)
end
local out = evaluate(path, {qty = qty, order_notional = order_notional,
  delta = delta, side = o.side, opens = 0, now = now, day_meta = info.day,
  tier = info.tier, grows = function() return grows end}, ALL_KINDS)
local d = decision(out, reserved)
if out.reject then return record(d, o) end

local oi = open_ix(o.side)
for i, nd in ipairs(path) do
  local at = s[i] .. '|' .. o.sym
  nd.agg[oi] = exact_add(nd.agg[oi], delta, NODE_SUMS[oi], nd.scope)
  pos[i][oi] = exact_add(pos[i][oi], delta, POSITION_SUMS[oi], at)
  pos[i][4 + oi] = exact_add(pos[i][4 + oi], qty - o.qty, POSITION_SUMS[4 + oi], at)
end
if inexact then return record(inexact_reject(reserved), o) end
count_messages(path, now)
write_nodes(agg_key, s, path_aggs(path))
write_positions(pos_key, s, o.sym, pos)
rcall('HSET', order_key, 'qty', qty, 'pn', pn, 'ps', ps, 'res', reserved)
if set_ro then rcall('HSET', order_key, 'ro', 1) end
-- Time in force hook: a new one replaces the due time.
if new_tif ~= '' then
  if new_tif == 'DAY' then rcall('HDEL', order_key, 'tif') else rcall('HSET', order_key, 'tif', new_tif) end
  local due = due_of(policy_key, new_tif, new_exp, info.day, now)
  if due then rcall('ZADD', life.exp, due, order_key) else rcall('ZREM', life.exp, order_key) end
end
return record(d, o)
