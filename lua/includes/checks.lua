--[[
  The limit checks shared by reserve and replace. Check kinds run in this
  order, each over the path firm, desk, account, strategy, trader:
    MAX_ORDER_QTY, MAX_ORDER_NOTIONAL, OPEN_ORDERS_LIMIT, GROSS_LIMIT,
    NET_LIMIT, MESSAGE_RATE
  The first breach of an enforced limit decides. A breach of a shadow limit
  is recorded and evaluation goes on, so one decision reports every shadow
  breach it saw.
  path: array of {scope, rec (policy record), agg (aggregates)}
  req:  {qty, order_notional, delta, side ('buy'|'sell'), opens (1 for a new
         order), mtype ('new'|'replace'|'cancel'), now}
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

local CHECKS = {
  function(out, nd, req)
    local lim = nd.rec.l and nd.rec.l.max_order_qty
    if lim and req.qty > lim then
      return breach(out, nd, 'max_order_qty', R.MAX_ORDER_QTY, lim, 0, req.qty)
    end
  end,
  function(out, nd, req)
    local lim = nd.rec.l and nd.rec.l.max_order_notional
    if lim and req.order_notional > lim then
      return breach(out, nd, 'max_order_notional', R.MAX_ORDER_NOTIONAL, lim, 0, req.order_notional)
    end
  end,
  function(out, nd, req)
    local lim = nd.rec.l and nd.rec.l.max_open_orders
    if lim and req.opens > 0 and nd.agg.n + req.opens > lim then
      return breach(out, nd, 'max_open_orders', R.OPEN_ORDERS_LIMIT, lim, nd.agg.n, req.opens)
    end
  end,
  function(out, nd, req)
    if req.delta <= 0 then return end
    local gross = gross_of(nd.agg)
    local lim = nd.rec.l and nd.rec.l.max_gross_notional
    if gross + req.delta > MAX_EXACT then
      out.reject = {R.GROSS_LIMIT, nd.scope, MAX_EXACT, gross, req.delta}
      return true
    end
    if lim and gross + req.delta > lim then
      return breach(out, nd, 'max_gross_notional', R.GROSS_LIMIT, lim, gross, req.delta)
    end
  end,
  function(out, nd, req)
    local lim = nd.rec.l and nd.rec.l.max_net_notional
    if not lim then return end
    local a = nd.agg
    local before = net_of(a.ob, a.os, a.fb, a.fs)
    local after
    if req.side == 'buy' then
      after = net_of(a.ob + req.delta, a.os, a.fb, a.fs)
    else
      after = net_of(a.ob, a.os + req.delta, a.fb, a.fs)
    end
    -- An order that does not worsen the net is never blocked by it.
    if after > lim and after > before then
      return breach(out, nd, 'max_net_notional', R.NET_LIMIT, lim, before, after - before)
    end
  end,
  function(out, nd, req)
    for _, w in ipairs(nd.windows) do
      local count, _ = ring_count(nd.agg_key, w.base, w.width, req.now)
      if count + 1 > w.limit then
        if breach(out, nd, 'messages', R.MESSAGE_RATE, w.limit, count, 1) then return true end
      end
    end
  end,
}

local function evaluate(path, req)
  local out = {shadow = {}}
  for _, check in ipairs(CHECKS) do
    for _, nd in ipairs(path) do
      if check(out, nd, req) then return out end
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

local function commit_windows(path, now)
  for _, nd in ipairs(path) do
    for _, w in ipairs(nd.windows) do
      ring_add(nd.agg_key, w.base, w.width, now)
    end
  end
end
