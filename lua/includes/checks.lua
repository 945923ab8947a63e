--[[
  The limit checks shared by reserve, replace and cancel. Check kinds run in
  this order, each over the path firm, desk, account, strategy, trader:
    MAX_ORDER_QTY, MAX_ORDER_NOTIONAL, OPEN_ORDERS_LIMIT, GROSS_LIMIT,
    NET_LIMIT, MESSAGE_RATE
  The first breach of an enforced limit decides. A breach of a shadow limit
  is recorded and evaluation goes on, so one decision reports every shadow
  breach it saw.
  path: array of {scope, rec (policy record), agg (node array), windows}
  req:  {qty, order_notional, delta, side ('buy'|'sell'), opens (1 for a new
         order), now}; a field left nil skips the checks that need it.
]]
local MAX_EXACT = 9007199254740991

local function breach(out, nd, limit_name, reason, limit, used, requested)
  local sh = nd.rec.sh
  if sh and sh[limit_name] then
    out.shadow[#out.shadow + 1] = {reason, nd.scope, limit, used, requested}
    return false
  end
  out.reject = {reason, nd.scope, limit, used, requested}
  return true
end

local function check_node(out, nd, req, kind)
  local l = nd.rec.l or {}
  local a = nd.agg
  if kind == 1 then
    if l.max_order_qty and req.qty > l.max_order_qty then
      return breach(out, nd, 'max_order_qty', R.MAX_ORDER_QTY, l.max_order_qty, 0, req.qty)
    end
  elseif kind == 2 then
    local lim = l.max_order_notional
    if lim and req.order_notional > lim then
      return breach(out, nd, 'max_order_notional', R.MAX_ORDER_NOTIONAL, lim, 0, req.order_notional)
    end
  elseif kind == 3 then
    local lim = l.max_open_orders
    if lim and req.opens > 0 and a[5] + req.opens > lim then
      return breach(out, nd, 'max_open_orders', R.OPEN_ORDERS_LIMIT, lim, a[5], req.opens)
    end
  elseif kind == 4 then
    if req.delta <= 0 then return false end
    local gross = gross_of(a)
    if gross + req.delta > MAX_EXACT then
      out.reject = {R.GROSS_LIMIT, nd.scope, MAX_EXACT, gross, req.delta}
      return true
    end
    local lim = l.max_gross_notional
    if lim and gross + req.delta > lim then
      return breach(out, nd, 'max_gross_notional', R.GROSS_LIMIT, lim, gross, req.delta)
    end
  elseif kind == 5 then
    local lim = l.max_net_notional
    if not lim then return false end
    local before = net_of(a[1], a[2], a[3], a[4])
    local after
    if req.side == 'buy' then
      after = net_of(a[1] + req.delta, a[2], a[3], a[4])
    else
      after = net_of(a[1], a[2] + req.delta, a[3], a[4])
    end
    -- An order that does not worsen the net is never blocked by it.
    if after > lim and after > before then
      return breach(out, nd, 'max_net_notional', R.NET_LIMIT, lim, before, after - before)
    end
  else
    local rings, w = a[6], nd.windows
    for j = 1, #w, 3 do
      local count = ring_count(rings and rings[w[j + 1]], w[j + 2], req.now)
      if count + 1 > w[j] and breach(out, nd, 'messages', R.MESSAGE_RATE, w[j], count, 1) then
        return true
      end
    end
  end
  return false
end

-- kinds: the check kinds to run, e.g. {1, 2, 3, 4, 5, 6} or {6}.
local function evaluate(path, req, kinds)
  local out = {shadow = {}}
  for _, kind in ipairs(kinds) do
    for _, nd in ipairs(path) do
      if check_node(out, nd, req, kind) then return out end
    end
  end
  return out
end

-- The fixed-shape decision array: code, scope, limit, used, requested,
-- notional, replayed (0 here), shadow count, then 5 fields per shadow breach.
local function decision(out, notional)
  local d = out.reject or {R.OK, false, false, false, false}
  d[6] = notional
  d[7] = 0
  d[8] = #out.shadow
  for _, s in ipairs(out.shadow) do
    for i = 1, 5 do d[#d + 1] = s[i] end
  end
  return d
end

-- A reject found before the limit checks, in the decision array shape.
local function reject_array(code, scope, notional)
  return {code, scope or false, false, false, false, notional or 0, 0, 0}
end

local function needs_time(path)
  for _, nd in ipairs(path) do
    if #nd.windows > 0 then return true end
  end
  return false
end

local function count_messages(path, now)
  for _, nd in ipairs(path) do
    if #nd.windows > 0 then
      local rings, w = nd.agg[6] or {}, nd.windows
      for j = 1, #w, 3 do rings[w[j + 1]] = ring_add(rings[w[j + 1]], w[j + 2], now) end
      nd.agg[6] = rings
    end
  end
end
