--[[
  ceil(qty * price) in minor units, exactly.
  price = pn / 10^ps; the caller guarantees qty * pn <= 2^53 - 1, so every
  intermediate is an exact double. fmod of exact integers is exact, which
  makes the quotient exact too. Mirrors ledger.money.notional_minor.
]]
local function notional(qty, pn, ps, mu)
  local product = qty * pn
  if ps <= mu then
    return product * (10 ^ (mu - ps))
  end
  local d = 10 ^ (ps - mu)
  local r = math.fmod(product, d)
  local q = (product - r) / d
  if r > 0 then q = q + 1 end
  return q
end
