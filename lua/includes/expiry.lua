--[[
  Time in force and retention (FIX tag 59). Needs common, exposure, day and path.
  Expiry index "P:{F}:expiry": a zset of the firm's open orders that have a
  due time (every order but GTC), score = due time in ms of server time,
  member = the order's key (as it arrived in KEYS when it was reserved, so
  no key is built here). The due time is fixed at reservation:
    DAY: the firm's next trading-day roll (day.lua), GTD: expire_time,
    IOC / FOK: now + the policy's grace (an execution report normally closes
    them first: the first fill releases what is left, see life_after_fill).
  Every decision retires at most EXPIRE_PER_CALL due orders (bounded work per
  call); lua/sweepExpired-6.lua retires the rest on demand. A retired order
  is released (reason "expired", by "system:expiry"), audited like a
  release and published on the events channel ("P:events", the kill's) as
  one {"type": "expire", "cancels": [...]} per call, so gateways can cancel
  at the venue. A closed order (filled, released, expired) expires after
  the policy's retention (policy hash "meta|life" = {rc = ms, 0 = kept
  for ever; g = IOC/FOK grace ms}).
]]
local EXPIRE_PER_CALL = 5
local EXPIRY_ACTOR = 'system:expiry'
-- A policy loaded before "meta|life" existed: the documented defaults (ledger/policy/lifecycle.py).
local LIFE_DEFAULT = {rc = 259200000, g = 5000}
local TIF_CODES = {DAY = true, GTC = true, GTD = true, IOC = true, FOK = true}

-- Read once per call: per_call() clears it when the next call begins.
local life_cache = nil
per_call(function() life_cache = nil end)
local function life_of(policy_key)
  if life_cache == nil then
    local raw = rcall('HGET', policy_key, 'meta|life')
    life_cache = raw and cmsgpack.unpack(raw) or LIFE_DEFAULT
  end
  return life_cache
end

-- The first ms of the next trading day after now (meta|day of day.lua).
local function next_roll(meta_day, now)
  if not meta_day then return (math.floor(now / DAY_MS) + 1) * DAY_MS end
  local d = cmsgpack.unpack(meta_day)
  local function offset(t)
    local off = d.s[2]
    for i = 1, #d.s, 2 do
      if d.s[i] <= t then off = d.s[i + 1] else break end
    end
    return off
  end
  local day = math.floor((now + offset(now) - d.r) / DAY_MS)
  -- The roll's own UTC offset may differ from now's (a summer/winter change in between).
  local t = (day + 1) * DAY_MS + d.r - offset(now)
  t = (day + 1) * DAY_MS + d.r - offset(t)
  return t
end

-- A new order's due time, or nil (GTC). expire_ms is GTD's expire_time.
local function due_of(policy_key, tif, expire_ms, meta_day, now)
  if tif == 'GTC' then return nil end
  if tif == 'GTD' then return tonumber(expire_ms) end
  if tif == 'IOC' or tif == 'FOK' then return now + life_of(policy_key).g end
  return next_roll(meta_day, now)
end

-- Refusal of a leg whose time in force cannot stand (a GTD already due by
-- server time), as an INVALID_ORDER decision array with its message; nil if fine.
local function tif_reject(tif, expire_ms, now)
  if not TIF_CODES[tif] then
    return {R.INVALID_ORDER, false, false, false, false, 0, 0, 0,
      'time_in_force: must be DAY, GTC, GTD, IOC or FOK'}
  end
  if tif == 'GTD' and tonumber(expire_ms) <= now then
    return {R.INVALID_ORDER, false, false, now, tonumber(expire_ms), 0, 0, 0,
      'expire_time: must be after the ledger\'s time now; nothing changed'}
  end
  return nil
end

-- Marks a closed order for deletion after the retention, and drops it from the index.
local function close_order(policy_key, exp_key, order_key)
  rcall('ZREM', exp_key, order_key)
  local rc = life_of(policy_key).rc
  if rc > 0 then rcall('PEXPIRE', order_key, rc) end
end

-- Releases one open order as expired (release-7.lua's arithmetic); returns its
-- cancel instruction for the event, or nil if it is closed or gone.
local function retire(ctx, order_key)
  rcall('ZREM', ctx.exp, order_key)
  local o = load_order(order_key)
  if not o or o.st ~= 'open' then return nil end
  local id = string.match(order_key, '}:order:(.*)$')
  local oi = open_ix(o.side)
  local aggs = read_nodes(ctx.agg, o.scopes)
  for _, a in ipairs(aggs) do
    a[oi] = a[oi] - o.res
    a[5] = a[5] - 1
  end
  write_nodes(ctx.agg, o.scopes, aggs)
  local leaves = math.max(o.qty - o.cum, 0)
  local pos = read_positions(ctx.pos, o.scopes, o.sym)
  for _, p in ipairs(pos) do
    p[oi] = p[oi] - o.res
    p[4 + oi] = p[4 + oi] - leaves
  end
  write_positions(ctx.pos, o.scopes, o.sym, pos)
  rcall('ZREM', ctx.open, unpack(open_members(o, id)))
  rcall('HSET', order_key, 'st', 'released', 'res', 0, 'why', 'expired')
  close_order(ctx.policy, ctx.exp, order_key)
  audit(ctx.audit, ctx.maxlen, about({op = 'release', order_id = id, by = EXPIRY_ACTOR,
    why = 'expired', code = R.OK, released = o.res, already = 0,
    tif = rcall('HGET', order_key, 'tif') or 'DAY'}, o.scopes, o.sym))
  return {action = 'cancel', order_id = id, account = string.match(o.scopes[3], ':(.*)$'),
    strategy = string.match(o.scopes[4], ':(.*)$'), trader = string.match(o.scopes[5], ':(.*)$'),
    symbol = o.sym, side = o.side, leaves_qty = leaves, reason = 'expired'}
end

-- One event per call for what it retired, on the kill's channel "P:events".
local function publish_expired(ctx, cancels, now)
  if #cancels == 0 then return end
  local prefix, firm = string.match(ctx.exp, '^(.*):{([^}]*)}')
  local ids = {}
  for i, c in ipairs(cancels) do ids[i] = c.order_id end
  rcall('PUBLISH', prefix .. ':events', cjson.encode({type = 'expire', firm = firm,
    by = EXPIRY_ACTOR, reason = 'expired', at_ms = now, open_orders = ids, cancel_open = true,
    cancels = cancels}))
end

-- Retires up to `limit` orders due at `now`; returns how many, and whether more are due.
local function expire_due(ctx, now, limit)
  local due = rcall('ZRANGEBYSCORE', ctx.exp, '-inf', now, 'LIMIT', 0, limit + 1)
  local cancels, n = {}, 0
  for i = 1, math.min(#due, limit) do
    local c = retire(ctx, due[i])
    if c then cancels[#cancels + 1] = c end
    n = n + 1
  end
  publish_expired(ctx, cancels, now)
  return n, #due > limit
end

-- A fill's hook: a fill that closes the order closes it for retention; the
-- first fill of an IOC or FOK order that leaves some open releases the rest
-- (true then).
local function life_after_fill(ctx, order_key, was_open, closes, now)
  if closes then
    close_order(ctx.policy, ctx.exp, order_key)
  elseif was_open then
    local tif = rcall('HGET', order_key, 'tif')
    if tif == 'IOC' or tif == 'FOK' then
      publish_expired(ctx, {retire(ctx, order_key)}, now)
      return true
    end
  end
  return false
end

-- Retires the order at order_key if it is due by now; true if it did.
local function retire_if_due(ctx, order_key, now)
  local due = rcall('ZSCORE', ctx.exp, order_key)
  if not due or tonumber(due) > now then return false end
  publish_expired(ctx, {retire(ctx, order_key)}, now)
  return true
end
