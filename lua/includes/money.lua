--[[
  ceil(qty * price * multiplier) in minor units, exactly.
  price = pn / 10^ps; the caller guarantees qty * pn <= 2^53 - 1. The symbol's
  contract multiplier m = {numerator, scale} (nil: 1, from the tier record
  "m", see ledger/store/policy_store.py) joins the product and the scale; a
  product or a notional beyond 2^53 - 1 sets `inexact` (common.lua), so the
  script refuses before writing. Every intermediate is then an exact double;
  fmod of exact integers is exact, which makes the quotient exact too.
  Mirrors ledger.policy.money.notional_minor.
]]
local function notional(qty, pn, ps, mu, m)
  local product = qty * pn
  if m then
    product, ps = product * m[1], ps + m[2]
    if product > EXACT_MAX and not inexact then
      inexact = {'qty * price * multiplier', '', qty, pn}
    end
  end
  if ps <= mu then
    local n = product * (10 ^ (mu - ps))
    if n > EXACT_MAX and not inexact then inexact = {'notional', '', qty, pn} end
    return n
  end
  local d = 10 ^ (ps - mu)
  local r = math.fmod(product, d)
  local q = (product - r) / d
  if r > 0 then q = q + 1 end
  return q
end
