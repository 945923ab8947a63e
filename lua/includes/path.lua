--[[
  An order's path: its five scopes, their policy records and their state.
  Policy hash fields: "<scope>" -> msgpack node record {p = parent scope,
  l = {limit = value}, w = {type = {limit, ring id, bucket ms, ...}},
  sh = {limit = true}, st = state, rs / rv = account restricts symbols /
  venues, cr = cancel-to-new ratio, ft = fill throttle};
  "e|<scope>|<scope>" -> entitlement; "es|account:A|SYM", "ev|account:A|VENUE"
  -> symbol and venue entitlement; "s|SYM" -> the symbol's tier;
  "meta|rev", "meta|mu", "meta|tiers", "meta|px", "meta|day", "meta|lid"
  (an id of its own for each load).
]]

-- The first active kill on the path, as a scope string, or nil.
local function killed(kills_key, global_key, scopes)
  if rcall('EXISTS', global_key) == 1 then return 'global' end
  local v = rcall('HMGET', kills_key, unpack(scopes))
  for i = 1, #scopes do
    if v[i] then return scopes[i] end
  end
  return nil
end

--[[
  Policy records already unpacked, kept from one call to the next by a Redis
  Function's library (a script run by EVALSHA starts with it empty each time):
  policy_key -> {lid = the load's "meta|lid", recs = {field -> record}}. A
  policy hash is only ever replaced whole, under a new "meta|lid", so a record
  read under the lid it was unpacked under is the one stored; a policy loaded
  before load ids existed has none and is unpacked on every call. Only node
  records and tiers are kept (nothing written outside a load), never
  modified by a caller, and at most RECORDS_MAX of them at once.
]]
local record_cache, cached_records = {}, 0
local RECORDS_MAX = 20000

local function policy_record(policy_key, lid, field, raw)
  if not lid then return cmsgpack.unpack(raw) end
  local c = record_cache[policy_key]
  if not c or c.lid ~= lid then
    c = {lid = lid, recs = {}}
    record_cache[policy_key] = c
  end
  local rec = c.recs[field]
  if rec == nil then
    if cached_records >= RECORDS_MAX then
      record_cache, cached_records = {}, 0
      c = {lid = lid, recs = {}}
      record_cache[policy_key] = c
    end
    rec = cmsgpack.unpack(raw)
    c.recs[field] = rec
    cached_records = cached_records + 1
  end
  return rec
end

-- scopes: firm, desk, account, strategy, trader. Returns the five node
-- records and the firm-wide settings the order needs, or nil and a reject array.
local function load_path(policy_key, scopes, sym, venue)
  local s = scopes
  local v = rcall('HMGET', policy_key, 'meta|rev', 'meta|mu', s[1], s[2], s[3], s[4], s[5],
    'e|' .. s[4] .. '|' .. s[3], 'e|' .. s[5] .. '|' .. s[3], 'e|' .. s[5] .. '|' .. s[4],
    'es|' .. s[3] .. '|' .. sym, 'ev|' .. s[3] .. '|' .. venue, 's|' .. sym,
    'meta|tiers', 'meta|px', 'meta|day', 'meta|lid')
  if not v[1] then return nil, reject_array(R.NO_POLICY, s[1]) end
  local lid = v[17]
  -- Account first: a missing account may only mean the caller's routing is stale.
  local recs = {}
  for _, i in ipairs({3, 5, 4, 2, 1}) do
    if not v[i + 2] then return nil, reject_array(R.UNKNOWN_NODE, s[i]) end
    recs[i] = policy_record(policy_key, lid, s[i], v[i + 2])
  end
  if recs[3].p ~= s[2] or recs[2].p ~= s[1] then
    return nil, reject_array(R.ROUTING_STALE, s[3])
  end
  if not v[8] then return nil, reject_array(R.NOT_ENTITLED, s[4]) end
  if not v[9] or not v[10] then return nil, reject_array(R.NOT_ENTITLED, s[5]) end
  if (recs[3].rs and not v[11]) or (recs[3].rv and not v[12]) then
    return nil, reject_array(R.NOT_ENTITLED, s[3])
  end
  if v[14] and not v[13] then return nil, reject_array(R.UNKNOWN_SYMBOL, 'symbol:' .. sym) end
  return {recs = recs, mu = tonumber(v[2]),
    tier = v[13] and policy_record(policy_key, lid, 's|' .. sym, v[13]),
    px = v[15] and cmsgpack.unpack(v[15]), day = v[16]}
end

-- The path of loaded records with their node state, effective limits and the
-- windows of a message type.
local function build_path(scopes, info, aggs, ctl, mtype, now)
  local path = {}
  for i = 1, 5 do
    local rec = info.recs[i]
    path[i] = {scope = scopes[i], rec = rec, agg = aggs[i], windows = windows_of(rec, mtype),
      l = effective_limits(rec.l, ctl.ov[i], ctl.factor[i], now)}
  end
  return path
end

local function path_aggs(path)
  local a = {}
  for i, nd in ipairs(path) do a[i] = nd.agg end
  return a
end

--[[
  Order hash: "fp" fingerprint, "dec" first decision (msgpack), "st" state
  (open | filled | released | rejected), "o" msgpack {firm, desk, account,
  strategy, trader, symbol, side, minor units, venue}, "qty", "pn", "ps"
  (order qty and price), "cum" filled qty, "res" reserved notional, "fn"
  filled notional, "f|<fill id>" per fill seen.
]]
local function load_order(order_key)
  local v = rcall('HMGET', order_key, 'st', 'o', 'qty', 'pn', 'ps', 'cum', 'res', 'fn', 'ro')
  if not v[1] or v[1] == 'rejected' then return nil end
  local p = cmsgpack.unpack(v[2])
  return {st = v[1], sym = p[6], side = p[7], mu = p[8], venue = p[9] or '', m = p[10],
    qty = tonumber(v[3]), pn = tonumber(v[4]),
    ps = tonumber(v[5]), cum = tonumber(v[6]), res = tonumber(v[7]), fn = tonumber(v[8]),
    ro = v[9] == '1', scopes = {'firm:' .. p[1], 'desk:' .. p[2], 'account:' .. p[3],
      'strategy:' .. p[4], 'trader:' .. p[5]}, ids = {p[1], p[2], p[3], p[4], p[5]}}
end

-- Tags an audit record with the nodes and symbol it concerns, so that a
-- reader scoped to some desks (the dashboard of a desk head) can pick its own.
-- ids: the five node ids when the caller has them (else cut from the scopes).
local function about(record, scopes, sym, ids)
  if ids then
    record.firm, record.desk, record.account = ids[1], ids[2], ids[3]
    record.strategy, record.trader = ids[4], ids[5]
  else
    for i, k in ipairs({'firm', 'desk', 'account', 'strategy', 'trader'}) do
      record[k] = string.match(scopes[i], '^[^:]*:(.*)$')
    end
  end
  record.sym = sym
  return record
end

-- The order's entries in the open-order index: desk, account, strategy, trader.
local function open_members(o, order_id)
  local m = {}
  for i = 2, 5 do m[i - 1] = o.scopes[i] .. '|' .. order_id end
  return m
end
