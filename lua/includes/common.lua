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
