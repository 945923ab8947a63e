--[[
  Runtime switches of an order's path, from the firm's controls hash (kept
  across policy loads; docs/controls-layout.md): the state of the account and
  the strategy ("s|S"), stress factors ("x|S", millionths) and overrides in
  force ("o|S"). The effective limit of a node is its override while server
  time is before the override's expiry, else the policy's; money limits are
  then scaled by the smallest stress factor set at the node or above it.
]]
local FULL = 1000000
local STRESSED = {'max_order_notional', 'max_gross_notional', 'max_net_notional',
  'max_symbol_notional', 'max_daily_loss', 'max_basket_notional'}
local EMPTY = {}

local function read_controls(controls_key, scopes)
  local f = {'s|' .. scopes[3], 's|' .. scopes[4]}
  for i = 1, 5 do f[2 + i] = 'x|' .. scopes[i] end
  for i = 1, 5 do f[7 + i] = 'o|' .. scopes[i] end
  local v = rcall('HMGET', controls_key, unpack(f))
  local c = {state = {}, factor = {}, ov = {}}
  if v[1] then c.state[3] = cmsgpack.unpack(v[1]).st end
  if v[2] then c.state[4] = cmsgpack.unpack(v[2]).st end
  local factor = FULL
  for i = 1, 5 do
    if v[2 + i] then factor = math.min(factor, cmsgpack.unpack(v[2 + i]).f) end
    c.factor[i] = factor
    c.ov[i] = v[7 + i] and cmsgpack.unpack(v[7 + i])
  end
  return c
end

-- floor(v * f / 10^6), exact for v up to 2^53 (the split keeps every product below it).
local function scaled(v, f)
  local q = math.floor(v / FULL)
  local r = v - q * FULL
  return q * f + math.floor(r * f / FULL)
end

local function effective_limits(l, ov, f, now)
  l = l or EMPTY
  if not ov and f >= FULL then return l end
  local e = {}
  for k, v in pairs(l) do e[k] = v end
  if ov then
    -- An override only replaces a limit the policy still sets.
    for name, o in pairs(ov) do
      if l[name] and now < o.u then e[name] = o.v end
    end
  end
  if f < FULL then
    for _, name in ipairs(STRESSED) do
      if e[name] then e[name] = scaled(e[name], f) end
    end
  end
  return e
end

-- The node's own state, the runtime one winning over the policy's.
local function state_of(c, i, rec)
  return c.state[i] or rec.st
end
