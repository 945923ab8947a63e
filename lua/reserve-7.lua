--[[
  Pre-trade check and reservation of a new order, all-or-nothing.
  Checks, in order: idempotency, kill switches on the path, policy nodes,
  entitlement, then the limit checks of includes/checks.lua. On accept the
  order's notional is reserved at all five nodes, its open-order count and
  message windows counted, and the order recorded. Every decision, accept or
  reject, is appended to the audit stream in this same call.
  Input:
    KEYS[1] policy hash of the firm
    KEYS[2] kills hash of the firm
    KEYS[3] global kill key (plain in single-instance mode, firm mirror on a cluster)
    KEYS[4] order hash
    KEYS[5] aggregates hash of the firm (one msgpack field per node)
    KEYS[6] open-order index (sorted set, members "<scope>|<order id>")
    KEYS[7] audit stream of the firm
    ARGV[1] order id
    ARGV[2..6] firm, desk (caller's routing, verified here), account, strategy, trader ids
    ARGV[7] symbol
    ARGV[8] side: "buy" | "sell"
    ARGV[9] qty, whole units
    ARGV[10] price numerator, ARGV[11] price scale (price = num / 10^scale)
    ARGV[12] fingerprint of the order fields (for idempotency)
    ARGV[13] actor (who sent the order)
    ARGV[14] audit stream max length (approximate)
    ARGV[15] how long a rejected order id is remembered, ms
  Output: decision array
    [1] code: OK or a reject reason (see ledger/reasons.py)
    [2] scope that decided (e.g. "desk:EQ-CASH") or nil
    [3] limit, [4] used, [5] requested (minor units or counts) or nil
    [6] order notional, minor units
    [7] 1 if this is the stored decision of an earlier identical call
    [8] number of shadow breaches, then 5 fields each: code, scope, limit, used, requested
    Codes: OK, KILL_SWITCH, NO_POLICY, UNKNOWN_NODE, ROUTING_STALE, NOT_ENTITLED,
    DUPLICATE_ORDER_ID, MAX_ORDER_QTY, MAX_ORDER_NOTIONAL, OPEN_ORDERS_LIMIT,
    GROSS_LIMIT, NET_LIMIT, MESSAGE_RATE
]]
--- @include "common"
--- @include "money"
--- @include "exposure"
--- @include "windows"
--- @include "checks"
--- @include "path"

local policy_key, kills_key, global_key = KEYS[1], KEYS[2], KEYS[3]
local order_key, agg_key, open_key, audit_key = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local order_id = ARGV[1]
local side, qty, pn, ps = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local fp, actor, maxlen = ARGV[12], ARGV[13], ARGV[14]

local function record(d)
  audit(audit_key, maxlen, {op = 'reserve', order_id = order_id, by = actor, code = d[1],
    scope = d[2], limit = d[3], used = d[4], req = d[5], notional = d[6], shadow = d[8],
    account = ARGV[4], strategy = ARGV[5], trader = ARGV[6], sym = ARGV[7], side = side,
    qty = qty, pn = pn, ps = ps})
  return d
end

local function remember_reject(d)
  rcall('HSET', order_key, 'fp', fp, 'dec', cmsgpack.pack(d), 'st', 'rejected')
  rcall('PEXPIRE', order_key, ARGV[15])
  return record(d)
end

local seen = rcall('HMGET', order_key, 'fp', 'dec')
if seen[1] then
  if seen[1] == fp then
    local d = cmsgpack.unpack(seen[2])
    d[7] = 1
    return d
  end
  return record(reject_array(R.DUPLICATE_ORDER_ID))
end

local scopes = {'firm:' .. ARGV[2], 'desk:' .. ARGV[3], 'account:' .. ARGV[4],
  'strategy:' .. ARGV[5], 'trader:' .. ARGV[6]}

local kill = killed(kills_key, global_key, scopes)
if kill then return remember_reject(reject_array(R.KILL_SWITCH, kill)) end

local path, rej, mu = load_path(policy_key, agg_key, scopes, 'new')
-- Not remembered: these depend only on the policy, and a retry after a
-- policy load or a routing refresh must be decided afresh.
if rej then return record(rej) end

local amount = notional(qty, pn, ps, mu)
local now = needs_time(path) and now_ms() or 0
local out = evaluate(path, {qty = qty, order_notional = amount, delta = amount, side = side,
  opens = 1, now = now}, {1, 2, 3, 4, 5, 6})
local d = decision(out, amount)
if out.reject then return remember_reject(d) end

local members = {}
for i, nd in ipairs(path) do
  local a = nd.agg
  a[open_ix(side)] = a[open_ix(side)] + amount
  a[5] = a[5] + 1
  -- No firm entry: the whole index is the firm's (see kill-5.lua).
  if i > 1 then
    members[#members + 1] = 0
    members[#members + 1] = scopes[i] .. '|' .. order_id
  end
end
count_messages(path, now)
write_nodes(agg_key, scopes, path_aggs(path))
rcall('ZADD', open_key, unpack(members))
rcall('HSET', order_key, 'fp', fp, 'dec', cmsgpack.pack(d), 'st', 'open',
  'o', cmsgpack.pack({ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], side, mu}),
  'qty', qty, 'pn', pn, 'ps', ps, 'cum', 0, 'res', amount, 'fn', 0)
return record(d)
