--[[
  Helpers shared by every script: server time, audit, number coercion.
  Lua's tostring() prints large numbers as 4.5e+15, so numbers are handed to
  redis.call (which writes integers exactly) and never concatenated.
]]
local rcall = redis.call

local function now_ms()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends one msgpack record to a bounded audit stream. The entry id carries
-- the server time in ms; approximate trimming is O(1).
local function audit(key, maxlen, record)
  rcall('XADD', key, 'MAXLEN', '~', maxlen, '*', 'm', cmsgpack.pack(record))
end

--[[
  Exact sums. Every stored sum (notional, qty, counts, P&L) is a Lua number,
  a double: beyond 2^53 - 1 it would silently round. exact_add is the one way
  a script adds to a stored sum; the first sum that leaves the exact range is
  remembered in `inexact` ({what, where, sum so far, addend}), and the script
  checks it before writing anything and refuses (INVALID_ORDER) rather than
  store a rounded figure. Both operands are exact integers within the range,
  so a true sum beyond it rounds to at least 2^53: the test is sound.
]]
local EXACT_MAX = 9007199254740991
local inexact = nil

local function exact_add(a, b, what, where)
  local s = a + b
  if (s > EXACT_MAX or s < -EXACT_MAX) and not inexact then
    inexact = {what, where or '', a, b}
  end
  return s
end

-- What inexact names, as a sentence for the caller (numbers are never concatenated).
local function inexact_message()
  local where = inexact[2] ~= '' and (' of ' .. inexact[2]) or ''
  return inexact[1] .. where .. ' would pass 2^53 - 1 and lose exactness; nothing changed'
end

-- Names of the node array's sums (exposure.lua) and of a position's.
local NODE_SUMS = {'open buy notional', 'open sell notional', 'filled buy notional',
  'filled sell notional', 'open orders'}
local POSITION_SUMS = {'open buy notional', 'open sell notional', 'filled buy notional',
  'filled sell notional', 'open buy qty', 'open sell qty', 'filled qty'}
