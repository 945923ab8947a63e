--[[
  Each node's state is one field of the firm's aggregate hash: field
  "<scope>" -> msgpack array {ob, os, fb, fs, n, w}:
    ob, os  open buy / sell notional (minor units)
    fb, fs  filled buy / sell notional (minor units)
    n       open orders
    w       message-window rings by ring id (windows.lua; ids in ledger/policy_store.py)
  One HMGET reads a whole path and one HSET writes it back.
  gross = ob + os + fb + fs
  net   = the worse of |fb - fs + ob| and |fb - fs - os|: signed fills plus
          every open order filling in the worst direction.
]]
local function read_nodes(agg_key, scopes)
  local v = rcall('HMGET', agg_key, unpack(scopes))
  local out = {}
  for i = 1, #scopes do
    if v[i] then
      out[i] = cmsgpack.unpack(v[i])
    else
      out[i] = {0, 0, 0, 0, 0}
    end
  end
  return out
end

local function write_nodes(agg_key, scopes, nodes)
  local args = {}
  for i = 1, #scopes do
    args[#args + 1] = scopes[i]
    args[#args + 1] = cmsgpack.pack(nodes[i])
  end
  rcall('HSET', agg_key, unpack(args))
end

local function gross_of(a)
  return a[1] + a[2] + a[3] + a[4]
end

local function net_of(ob, os, fb, fs)
  local f = fb - fs
  return math.max(math.abs(f + ob), math.abs(f - os))
end

-- Index into a node array of the open / filled notional of a side.
local function open_ix(side) if side == 'buy' then return 1 end return 2 end
local function filled_ix(side) if side == 'buy' then return 3 end return 4 end

--[[
  Positions: per node and symbol, field "<scope>|<symbol>" of the firm's
  position hash -> msgpack {ob, os, fb, fs, qb, qs, qn}: open buy / sell and
  filled buy / sell notional (minor units), open buy / sell qty, signed
  filled qty. Concentration, reduce-only and the daily loss read them.
]]
local function read_positions(pos_key, scopes, sym)
  local f = {}
  for i = 1, #scopes do f[i] = scopes[i] .. '|' .. sym end
  local v = rcall('HMGET', pos_key, unpack(f))
  local out = {}
  for i = 1, #scopes do
    out[i] = v[i] and cmsgpack.unpack(v[i]) or {0, 0, 0, 0, 0, 0, 0}
  end
  return out
end

local function write_positions(pos_key, scopes, sym, list)
  local args = {}
  for i = 1, #scopes do
    args[#args + 1] = scopes[i] .. '|' .. sym
    args[#args + 1] = cmsgpack.pack(list[i])
  end
  rcall('HSET', pos_key, unpack(args))
end

-- Whether an order only shrinks the position p: open orders on the same side
-- count as filled, so several reducing orders cannot together flip it.
local function reduces(p, side, qty)
  if side == 'buy' then return p[7] < 0 and p[5] + qty <= -p[7] end
  return p[7] > 0 and p[6] + qty <= p[7]
end

-- A reduce-only order (its own flag): the first node of the path whose
-- position it could grow, or nil. qty is what the order adds to the open qty
-- on its side (a replace: the change of its qty).
local function grows_at(pos, side, qty)
  for i = 1, #pos do
    if not reduces(pos[i], side, qty) then return i end
  end
  return nil
end
