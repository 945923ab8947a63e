--[[
  The limit checks shared by reserve, replace and cancel. Check kinds, each
  run over the path firm, desk, account, strategy, trader:
    1 MAX_ORDER_QTY, 2 MAX_ORDER_NOTIONAL (both the symbol's tier first),
    3 OPEN_ORDERS_LIMIT, 4 GROSS_LIMIT, 5 NET_LIMIT, 7 CONCENTRATION_LIMIT,
    8 DAILY_LOSS_LIMIT, 6 MESSAGE_RATE, 9 CANCEL_RATIO
  (ALL_KINDS is that order). The first breach of an enforced limit decides.
  A breach of a shadow limit is recorded and evaluation goes on, so one
  decision reports every shadow breach it saw.
  path: array of {scope, rec (policy record), l (effective limits), agg
         (node array), pos (node's position in the symbol), windows}
  req:  {qty, order_notional, delta, side ('buy'|'sell'), opens (1 for a new
         order), now, day_meta (the policy's "meta|day"), tier, grows(nd):
         whether the order adds exposure at the node}; a field left nil
         skips the checks that need it.
]]
local ALL_KINDS = {1, 2, 3, 4, 5, 7, 8, 6, 9}
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

-- The worst-case net of (ob, os, fb, fs) before and after adding delta on a side.
local function net_change(ob, os, fb, fs, side, delta)
  local before = net_of(ob, os, fb, fs)
  if side == 'buy' then return before, net_of(ob + delta, os, fb, fs) end
  return before, net_of(ob, os + delta, fb, fs)
end

local function check_tier(out, t, req, kind)
  if kind == 1 and t.q and req.qty > t.q then
    out.reject = {R.MAX_ORDER_QTY, 'tier:' .. t.t, t.q, 0, req.qty}
  elseif kind == 2 and t.n and req.order_notional > t.n then
    out.reject = {R.MAX_ORDER_NOTIONAL, 'tier:' .. t.t, t.n, 0, req.order_notional}
  end
  return out.reject ~= nil
end

local function check_node(out, nd, req, kind)
  local l = nd.l
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
    local before, after = net_change(a[1], a[2], a[3], a[4], req.side, req.delta)
    -- An order that does not worsen the net is never blocked by it.
    if after > lim and after > before then
      return breach(out, nd, 'max_net_notional', R.NET_LIMIT, lim, before, after - before)
    end
  elseif kind == 7 then
    local lim = l.max_symbol_notional
    if not lim or not nd.pos then return false end
    local p = nd.pos
    local before, after = net_change(p[1], p[2], p[3], p[4], req.side, req.delta)
    if after > lim and after > before then
      return breach(out, nd, 'max_symbol_notional', R.CONCENTRATION_LIMIT, lim, before,
        after - before)
    end
  elseif kind == 8 then
    local lim = l.max_daily_loss
    if not lim or not req.grows then return false end
    -- The day number is worked out only where a loss budget asks for it.
    if not req.day then req.day = day_of(req.day_meta, req.now) end
    local loss = -day_pnl(a, req.day)
    if loss >= lim and req.grows(nd) then
      return breach(out, nd, 'max_daily_loss', R.DAILY_LOSS_LIMIT, lim, loss, req.order_notional)
    end
  elseif kind == 9 then
    local cr = nd.rec.cr
    if not cr or req.opens == 0 then return false end
    local rings = a[6]
    local news = ring_count(rings and rings[9], cr.w, req.now)
    local cancels = ring_count(rings and rings[10], cr.w, req.now)
    if news + cancels >= cr.m and cancels * 100 > cr.r * news then
      return breach(out, nd, 'cancel_to_new', R.CANCEL_RATIO, cr.r, cancels, news)
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

-- kinds: the check kinds to run, e.g. ALL_KINDS or {6}; out: the result so
-- far (shadow breaches of earlier checks), or nil.
local function evaluate(path, req, kinds, out)
  out = out or {shadow = {}}
  for _, kind in ipairs(kinds) do
    if req.tier and kind <= 2 and check_tier(out, req.tier, req, kind) then return out end
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

-- A stored sum would have lost exactness (common.lua's exact_add): INVALID_ORDER
-- at the node, limit 2^53 - 1, used the sum so far, requested the addend, then
-- the message naming the sum after the (empty) shadow list.
local function inexact_reject(notional)
  return {R.INVALID_ORDER, inexact[2] ~= '' and inexact[2] or false, EXACT_MAX, inexact[3],
    inexact[4], notional or 0, 0, 0, inexact_message()}
end

-- Counts one message in the windows of every node, and in the ring of the
-- cancel-to-new ratio (ratio_ring 9 for a new order, 10 for a cancel).
local function count_messages(path, now, ratio_ring)
  for _, nd in ipairs(path) do
    local cr = ratio_ring and nd.rec.cr
    if #nd.windows > 0 or cr then
      local rings, w = nd.agg[6] or {}, nd.windows
      for j = 1, #w, 3 do rings[w[j + 1]] = ring_add(rings[w[j + 1]], w[j + 2], now) end
      if cr then rings[ratio_ring] = ring_add(rings[ratio_ring], cr.w, now) end
      nd.agg[6] = rings
    end
  end
end
