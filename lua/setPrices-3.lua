--[[
  Store reference prices of one firm, and halt a symbol whose price jumped
  further than the policy allows. The price is stored even when it halts, so
  the next one is compared with the last price seen; a halt stays, whatever
  prices follow, until resumeSymbol-2.lua lifts it.
  The jump is |new - old| / old. It halts when |new - old| * 10000 > j * old,
  with j the policy's max jump in bps (meta|px); a jump exactly at j does not.
  Both prices are brought to a common scale, which can outgrow the 2^53 a
  double keeps exact, so that case runs in base 10^7 limbs.
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

local policy_key, prices_key, audit_key = KEYS[1], KEYS[2], KEYS[3]
local who, maxlen = ARGV[1], ARGV[2]

local BASE = 10000000
local MAX_EXACT = 9007199254740991

-- Limbs are least significant first, with no zero limb on top. math.fmod is
-- exact on integers where % (a - floor(a/b)*b) may round.
local function big(n)
  local out = {}
  repeat
    local limb = math.fmod(n, BASE)
    out[#out + 1] = limb
    n = (n - limb) / BASE
  until n == 0
  return out
end

local function trim(a)
  while #a > 1 and a[#a] == 0 do a[#a] = nil end
  return a
end

-- a * m for 0 < m <= BASE: a limb product stays below 10^14, far under 2^53.
local function mul_small(a, m)
  local out, carry = {}, 0
  for i = 1, #a do
    local v = a[i] * m + carry
    out[i] = math.fmod(v, BASE)
    carry = (v - out[i]) / BASE
  end
  while carry > 0 do
    out[#out + 1] = math.fmod(carry, BASE)
    carry = (carry - out[#out]) / BASE
  end
  return out
end

local function shift(a, k)
  while k > 0 do
    local step = math.min(k, 7)
    a = mul_small(a, 10 ^ step)
    k = k - step
  end
  return a
end

local function mul(a, b)
  local out = {}
  for i = 1, #a + #b do out[i] = 0 end
  for i = 1, #a do
    local carry, k = 0, i
    for j = 1, #b do
      local v = out[k] + a[i] * b[j] + carry
      out[k] = math.fmod(v, BASE)
      carry = (v - out[k]) / BASE
      k = k + 1
    end
    while carry > 0 do
      local v = out[k] + carry
      out[k] = math.fmod(v, BASE)
      carry = (v - out[k]) / BASE
      k = k + 1
    end
  end
  return trim(out)
end

local function cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  for i = #a, 1, -1 do
    if a[i] ~= b[i] then return a[i] < b[i] and -1 or 1 end
  end
  return 0
end

-- a - b for a >= b.
local function sub(a, b)
  local out, borrow = {}, 0
  for i = 1, #a do
    local v = a[i] - (b[i] or 0) - borrow
    borrow = v < 0 and 1 or 0
    out[i] = v + borrow * BASE
  end
  return trim(out)
end

local function add_small(a, n)
  local out = {}
  for i = 1, #a do out[i] = a[i] end
  local i = 1
  while n > 0 do
    local v = (out[i] or 0) + n
    out[i] = math.fmod(v, BASE)
    n = (v - out[i]) / BASE
    i = i + 1
  end
  return out
end

local function digits(a)
  local parts = {string.format('%d', a[#a])}
  for i = #a - 1, 1, -1 do parts[#parts + 1] = string.format('%07d', a[i]) end
  return table.concat(parts)
end

-- ceil(x / d), d > 0, by long division one decimal digit at a time.
local function ceil_div(x, d)
  local steps = {d}
  while true do
    local nxt = mul_small(steps[#steps], 10)
    if cmp(nxt, x) > 0 then break end
    steps[#steps + 1] = nxt
  end
  local q, r = {0}, x
  for k = #steps, 1, -1 do
    local digit = 0
    while cmp(r, steps[k]) >= 0 do
      r = sub(r, steps[k])
      digit = digit + 1
    end
    q = add_small(trim(mul_small(q, 10)), digit)
  end
  if cmp(r, {0}) > 0 then q = add_small(q, 1) end
  return q
end

-- The decimal text of num / 10^scale, as ledger.money.Price prints it.
local function decimal(pn, ps)
  local text = digits(big(pn))
  if ps == 0 then return text end
  text = string.rep('0', ps + 1 - #text) .. text
  return string.sub(text, 1, -ps - 1) .. '.' .. string.sub(text, -ps)
end

local function percent(bps)
  local text = string.rep('0', 3 - #bps) .. bps
  return string.sub(text, 1, -3) .. '.' .. string.sub(text, -2) .. '%'
end

-- The jump from old to new in bps, rounded up (a decimal string), and whether
-- it is over j (nil: no limit). Rounding up keeps "jump > j" the same test.
local function jump(old_n, old_s, new_n, new_s, j)
  local s = math.max(old_s, new_s)
  if s - old_s <= 15 and s - new_s <= 15 then
    local a, b = old_n * 10 ^ (s - old_s), new_n * 10 ^ (s - new_s)
    local x = math.abs(b - a) * 10000
    if a <= MAX_EXACT and b <= MAX_EXACT and x <= MAX_EXACT and (not j or j * a <= MAX_EXACT) then
      local r = math.fmod(x, a)
      local q = (x - r) / a
      if r > 0 then q = q + 1 end
      return digits(big(q)), j ~= nil and x > j * a
    end
  end
  local a, b = shift(big(old_n), s - old_s), shift(big(new_n), s - new_s)
  local x = mul_small(cmp(a, b) > 0 and sub(a, b) or sub(b, a), 10000)
  return digits(ceil_div(trim(x), a)), j ~= nil and cmp(x, mul(big(j), a)) > 0
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
    bps, over = jump(old.pn, old.ps, pn, ps, max_jump)
    local halt_field = 'h|' .. symbol
    if rcall('HEXISTS', prices_key, halt_field) == 1 then
      status = 'already_halted'
    elseif over then
      status = 'halted'
      local why = 'reference price jumped ' .. percent(bps) .. ' from ' .. decimal(old.pn, old.ps)
        .. ' to ' .. decimal(pn, ps) .. ' (max ' .. percent(digits(big(max_jump))) .. ')'
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
