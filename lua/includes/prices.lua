--[[
  Reference-price checks. The firm's prices hash holds "SYM" -> msgpack
  {pn, ps, t = server ms of the set} and "h|SYM" while the symbol is halted
  (lua/setPrices-3.lua). A halt stops every order in the symbol; with tiers
  in the policy, an order also needs a reference price no older than the
  policy's max age (missing or old: fail closed) and a price within its
  tier's collar: |price - ref| * 10000 <= collar bps * ref, exactly
  (includes/deviation.lua).
]]
local function price_checks(prices_key, sym, tier, px, pn, ps, now)
  local v = rcall('HMGET', prices_key, sym, 'h|' .. sym)
  local where = 'symbol:' .. sym
  if v[2] then return reject_array(R.SYMBOL_HALTED, where) end
  if not tier then return nil end
  local max_age = px and px.a or 0
  if not v[1] then return {R.REFERENCE_PRICE_STALE, where, max_age, false, false, 0, 0, 0} end
  local ref = cmsgpack.unpack(v[1])
  local age = now - ref.t
  if not px or age > max_age then
    return {R.REFERENCE_PRICE_STALE, where, max_age, age, false, 0, 0, 0}
  end
  if exceeds(ref.pn, ref.ps, pn, ps, tier.c) then
    local bps = deviation(ref.pn, ref.ps, pn, ps, tier.c)
    return {R.PRICE_COLLAR, 'tier:' .. tier.t, tier.c, tonumber(bps), false, 0, 0, 0}
  end
  return nil
end
