--[[
  Cancel request: counts a cancel message against the windows on the order's
  path. The reservation stays until the venue confirms (see release-7.lua).
  A cancel is refused only for MESSAGE_RATE (a message is a message to the
  venue); kill switches never block it. It counts toward the cancel-to-new
  ratio of every node that has one.
  Input:
    KEYS[1] policy hash, KEYS[2] order hash, KEYS[3] aggregates hash, KEYS[4] audit stream
    ARGV[1] order id, ARGV[2] actor, ARGV[3] audit stream max length
  Output: decision array as reserve-n.lua ([6] is the order's reserved notional).
    Codes: OK, UNKNOWN_ORDER, ORDER_CLOSED, NO_POLICY, MESSAGE_RATE
]]
--- @include "common"
--- @include "exposure"
--- @include "windows"
--- @include "day"
--- @include "controls"
--- @include "checks"
--- @include "path"

local policy_key, order_key, agg_key, audit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local order_id, actor, maxlen = ARGV[1], ARGV[2], ARGV[3]

local o
local function record(d)
  local r = {op = 'cancel', order_id = order_id, by = actor, code = d[1], scope = d[2],
    limit = d[3], used = d[4]}
  audit(audit_key, maxlen, o and about(r, o.scopes, o.sym, o.ids) or r)
  return d
end

o = load_order(order_key)
if not o then return record(reject_array(R.UNKNOWN_ORDER)) end
if o.st ~= 'open' then return record(reject_array(R.ORDER_CLOSED)) end

-- Nodes removed from the policy since the order was sent have no windows:
-- the cancel of an order must stay possible.
local recs = rcall('HMGET', policy_key, 'meta|rev', unpack(o.scopes))
if not recs[1] then return record(reject_array(R.NO_POLICY, o.scopes[1])) end
local aggs = read_nodes(agg_key, o.scopes)
local path = {}
for i = 1, 5 do
  local rec = recs[i + 1] and cmsgpack.unpack(recs[i + 1]) or {}
  path[i] = {scope = o.scopes[i], rec = rec, agg = aggs[i], windows = windows_of(rec, 'cancel'),
    l = rec.l or {}}
end
local now = now_ms()
local out = evaluate(path, {now = now}, {6})
local d = decision(out, o.res)
if out.reject then return record(d) end
count_messages(path, now, 10)
write_nodes(agg_key, o.scopes, aggs)
rcall('HINCRBY', order_key, 'cxl', 1)
return record(d)
