--[[
  Store reference prices of one firm, and halt a symbol whose price jumped
  further than the policy allows. The price is stored even when it halts, so
  the next one is compared with the last price seen; a halt stays, whatever
  prices follow, until resumeSymbol-2.lua lifts it.
  The jump is |new - old| / old. It halts when |new - old| * 10000 > j * old,
  with j the policy's max jump in bps (meta|px); a jump exactly at j does not.
  The arithmetic is exact at any scale (includes/deviation.lua).
  Input:
    KEYS[1] policy hash, KEYS[2] prices hash, KEYS[3] audit stream (one firm)
    ARGV[1] who sets the prices, ARGV[2] audit stream max length
    ARGV[3..5] symbol, price numerator, price scale (price = num / 10^scale);
    each further symbol adds such a triple
  Output: {code, status, jump, status, jump, ...}: one pair per symbol, in order.
    status: "set", "halted" (by this price) or "already_halted" (the price is
    stored, the symbol stays halted). jump: in bps, rounded up, as a decimal
    string; "" for a symbol's first price.
    Codes: OK
]]
--- @include "common"
--- @include "deviation"

local policy_key, prices_key, audit_key = KEYS[1], KEYS[2], KEYS[3]
local who, maxlen = ARGV[1], ARGV[2]

-- The decimal text of num / 10^scale, as ledger.money.Price prints it.
local function decimal(pn, ps)
  local text = limbs().digits(limbs().big(pn))
  if ps == 0 then return text end
  text = string.rep('0', ps + 1 - #text) .. text
  return string.sub(text, 1, -ps - 1) .. '.' .. string.sub(text, -ps)
end

local function percent(bps)
  local text = string.rep('0', 3 - #bps) .. bps
  return string.sub(text, 1, -3) .. '.' .. string.sub(text, -2) .. '%'
end

local px = rcall('HGET', policy_key, 'meta|px')
local max_jump = px and cmsgpack.unpack(px).j or nil
local now = now_ms()
local out, set = {R.OK}, {}
for i = 3, #ARGV, 3 do
  local symbol, pn, ps = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local status, bps = 'set', ''
  local prev = rcall('HGET', prices_key, symbol)
  if prev then
    local old = cmsgpack.unpack(prev)
    local over
    bps, over = deviation(old.pn, old.ps, pn, ps, max_jump)
    local halt_field = 'h|' .. symbol
    if rcall('HEXISTS', prices_key, halt_field) == 1 then
      status = 'already_halted'
    elseif over then
      status = 'halted'
      local why = 'reference price jumped ' .. percent(bps) .. ' from ' .. decimal(old.pn, old.ps)
        .. ' to ' .. decimal(pn, ps) .. ' (max ' .. percent(string.format('%d', max_jump)) .. ')'
      local from, to = {pn = old.pn, ps = old.ps}, {pn = pn, ps = ps}
      rcall('HSET', prices_key, halt_field,
        cmsgpack.pack({by = who, why = why, t = now, from = from, to = to}))
      audit(audit_key, maxlen, {op = 'halt', symbol = symbol, by = who, why = why,
        from = from, to = to})
    end
  end
  rcall('HSET', prices_key, symbol, cmsgpack.pack({pn = pn, ps = ps, t = now}))
  set[symbol] = decimal(pn, ps)
  out[#out + 1] = status
  out[#out + 1] = bps
end
audit(audit_key, maxlen, {op = 'prices', by = who, px = set})
return out
