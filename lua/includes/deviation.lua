--[[
  Exact price deviation: |new - old| * 10000 compared with j * old, for the
  feed's jump breaker (setPrices-3.lua) and the price collar (prices.lua).
  Both prices are brought to a common scale, which can outgrow the 2^53 a
  double keeps exact, so that case runs in base 10^7 limbs.
]]
local BASE = 10000000
local MAX_EXACT = 9007199254740991

-- The limb arithmetic, built on first use: nearly every call stays on the
-- exact-double path, and a dozen closures would cost every script call that
-- includes this file.
local limbs_built
local function limbs()
  if limbs_built then return limbs_built end
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

  limbs_built = {big = big, trim = trim, mul_small = mul_small, shift = shift, mul = mul,
    cmp = cmp, sub = sub, add_small = add_small, digits = digits, ceil_div = ceil_div}
  return limbs_built
end

-- The deviation of new from old in bps, rounded up (a decimal string), and
-- whether it is over j (nil: no limit). Rounding up keeps "deviation > j" the
-- same test.
local function deviation(old_n, old_s, new_n, new_s, j)
  local s = math.max(old_s, new_s)
  if s - old_s <= 15 and s - new_s <= 15 then
    local a, b = old_n * 10 ^ (s - old_s), new_n * 10 ^ (s - new_s)
    local x = math.abs(b - a) * 10000
    if a <= MAX_EXACT and b <= MAX_EXACT and x <= MAX_EXACT and (not j or j * a <= MAX_EXACT) then
      local r = math.fmod(x, a)
      local q = (x - r) / a
      if r > 0 then q = q + 1 end
      return string.format('%d', q), j ~= nil and x > j * a
    end
  end
  local L = limbs()
  local a, b = L.shift(L.big(old_n), s - old_s), L.shift(L.big(new_n), s - new_s)
  local x = L.mul_small(L.cmp(a, b) > 0 and L.sub(a, b) or L.sub(b, a), 10000)
  return L.digits(L.ceil_div(L.trim(x), a)), j ~= nil and L.cmp(x, L.mul(L.big(j), a)) > 0
end


-- Whether new is more than j bps from old; the order path's test, which
-- needs no rounded figure unless it fails.
local function exceeds(old_n, old_s, new_n, new_s, j)
  local s = math.max(old_s, new_s)
  if s - old_s <= 15 and s - new_s <= 15 then
    local a, b = old_n * 10 ^ (s - old_s), new_n * 10 ^ (s - new_s)
    local x = math.abs(b - a) * 10000
    if a <= MAX_EXACT and b <= MAX_EXACT and x <= MAX_EXACT and j * a <= MAX_EXACT then
      return x > j * a
    end
  end
  local _, over = deviation(old_n, old_s, new_n, new_s, j)
  return over
end
