--[[
  Aggregates of one node live in the firm's aggregate hash under
  "<scope>|ob", "|os" (open buy/sell notional), "|fb", "|fs" (filled buy/sell
  notional) and "|n" (open orders).
  gross = ob + os + fb + fs
  net   = the worse of (fb - fs + ob) and (fb - fs - os), in absolute value:
          signed fills plus open orders all filling in the worst direction.
]]
local AGG = {'ob', 'os', 'fb', 'fs', 'n'}

local function read_agg(agg_key, scope)
  local v = rcall('HMGET', agg_key, scope .. '|ob', scope .. '|os', scope .. '|fb',
    scope .. '|fs', scope .. '|n')
  return {ob = num(v[1]), os = num(v[2]), fb = num(v[3]), fs = num(v[4]), n = num(v[5])}
end

local function gross_of(a)
  return a.ob + a.os + a.fb + a.fs
end

local function net_of(ob, os, fb, fs)
  local f = fb - fs
  return math.max(math.abs(f + ob), math.abs(f - os))
end

local function bump(agg_key, scope, field, delta)
  if delta ~= 0 then
    rcall('HINCRBY', agg_key, scope .. '|' .. field, delta)
  end
end
