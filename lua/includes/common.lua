--[[
  Helpers shared by every script: server time, integer formatting, audit.
  Lua's tostring() prints large numbers as 4.5e+15: every number that goes
  into a string goes through fmt() instead.
]]
local rcall = redis.call

local function now_ms()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fmt(n)
  return string.format('%d', n)
end

-- Appends one msgpack record to a bounded audit stream (approximate trim is O(1)).
local function audit(key, maxlen, record)
  rcall('XADD', key, 'MAXLEN', '~', maxlen, '*', 'm', cmsgpack.pack(record))
end

local function num(v)
  if v == false or v == nil then return 0 end
  return tonumber(v)
end
