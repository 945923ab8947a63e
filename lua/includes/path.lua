--[[
  Loads an order's path from the firm policy hash and checks kill switches.
  Policy fields: "<scope>" -> msgpack node record {p = parent scope,
  l = {limit = value}, m = {type = {per_second, per_10s}}, sh = {limit = true}};
  "e|<scope>|<scope>" -> entitlement; "meta|rev", "meta|mu".
]]
local LEVEL_NAMES = {'firm', 'desk', 'account', 'strategy', 'trader'}

-- Returns the first active kill on the path, as a scope string, or nil.
local function killed(kills_key, global_key, scopes)
  if rcall('EXISTS', global_key) == 1 then return 'global' end
  local v = rcall('HMGET', kills_key, unpack(scopes))
  for i = 1, #scopes do
    if v[i] then return scopes[i] end
  end
  return nil
end

-- scopes: firm, desk, account, strategy, trader. Returns path or a reject.
local function load_path(policy_key, agg_key, scopes, mtype)
  local s = scopes
  local v = rcall('HMGET', policy_key, 'meta|rev', 'meta|mu', s[1], s[2], s[3], s[4], s[5],
    'e|' .. s[4] .. '|' .. s[3], 'e|' .. s[5] .. '|' .. s[3], 'e|' .. s[5] .. '|' .. s[4])
  if not v[1] then return nil, {R.NO_POLICY, s[1], false, false, false} end
  -- Account first: a missing account may only mean the caller's routing is stale.
  local order = {3, 5, 4, 2, 1}
  local recs = {}
  for _, i in ipairs(order) do
    if not v[i + 2] then return nil, {R.UNKNOWN_NODE, s[i], false, false, false} end
    recs[i] = cmsgpack.unpack(v[i + 2])
  end
  if recs[3].p ~= s[2] or recs[2].p ~= s[1] then
    return nil, {R.ROUTING_STALE, s[3], false, false, false}
  end
  if not v[8] then return nil, {R.NOT_ENTITLED, s[4], false, false, false} end
  if not v[9] or not v[10] then return nil, {R.NOT_ENTITLED, s[5], false, false, false} end
  local path = {}
  for i = 1, 5 do
    path[i] = {scope = s[i], rec = recs[i], agg = read_agg(agg_key, s[i]), agg_key = agg_key,
      windows = windows_of(s[i], recs[i], mtype)}
  end
  return path, nil, tonumber(v[2])
end

-- A reject found before the limit checks, in the decision array shape.
local function reject_array(r, notional)
  r[6] = notional or 0
  r[7] = 0
  r[8] = 0
  return r
end

local ORDER_FIELDS = {'st', 'firm', 'desk', 'account', 'strategy', 'trader', 'side', 'qty',
  'pn', 'ps', 'mu', 'cum', 'res', 'fn'}

-- The order record as a table, or nil if there is none (or it was a reject).
local function load_order(order_key)
  local v = rcall('HMGET', order_key, unpack(ORDER_FIELDS))
  if not v[1] or v[1] == 'rejected' then return nil end
  local o = {}
  for i, f in ipairs(ORDER_FIELDS) do o[f] = v[i] end
  for _, f in ipairs({'qty', 'pn', 'ps', 'mu', 'cum', 'res', 'fn'}) do o[f] = tonumber(o[f]) end
  o.scopes = {'firm:' .. o.firm, 'desk:' .. o.desk, 'account:' .. o.account,
    'strategy:' .. o.strategy, 'trader:' .. o.trader}
  return o
end

local function open_members(o, order_id)
  local m = {}
  for i = 1, 5 do m[i] = o.scopes[i] .. '|' .. order_id end
  return m
end
