--[[
  The five-level floor: the least a hierarchical reservation can do. Reads
  the five limits with one HMGET and reserves the amount at five levels with
  five HINCRBY; if a level would go over its limit, every increment made so
  far is undone and nothing is reserved.
  Input:
    KEYS[1] limits hash: field -> limit
    KEYS[2] used hash: field -> amount reserved
    ARGV[1..5] the five level fields (firm, desk, account, strategy, trader)
    ARGV[6] amount to reserve
  Output:
    1 if reserved at all five levels, 0 if a limit would be exceeded
]]
local rcall = redis.call
local limits = rcall('HMGET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
local amount = tonumber(ARGV[6])
for i = 1, 5 do
  local used = rcall('HINCRBY', KEYS[2], ARGV[i], amount)
  if used > tonumber(limits[i]) then
    for j = 1, i do rcall('HINCRBY', KEYS[2], ARGV[j], -amount) end
    return 0
  end
end
return 1
