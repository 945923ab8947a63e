--[[
  Overrides in force: controls hash field "o|<scope>" -> msgpack
  {<limit> = {v = value, u = expiry ms (server time), id = "OV-7"}, ...}
  (docs/controls-layout.md). Reserve ignores an entry once now >= u; writers
  here drop such entries too, so the field only holds what is still in force.
  Registry records ("OV-<n>" in the overrides hash) carry scope, limit,
  value, for_ms and the rest; requestOverride-4.lua and decideOverride-4.lua
  write them.
]]

-- The request number of an id: "OV-12" -> 12. Ids are counted per firm, so a
-- larger number is a later request.
local function override_seq(id)
  return tonumber(string.sub(id, 4))
end

local function live_overrides(controls_key, scope, now)
  local blob = rcall('HGET', controls_key, 'o|' .. scope)
  local live = {}
  if blob then
    for limit, e in pairs(cmsgpack.unpack(blob)) do
      if now < e.u then live[limit] = e end
    end
  end
  return live
end

local function store_overrides(controls_key, scope, live)
  if next(live) == nil then
    rcall('HDEL', controls_key, 'o|' .. scope)
  else
    rcall('HSET', controls_key, 'o|' .. scope, cmsgpack.pack(live))
  end
end

-- Puts an active registry record in force, unless a later request for the
-- same limit already is (a decrease asked for while an increase waited for
-- its approvals must not be undone by them). True if it went in.
local function put_in_force(controls_key, rec, now)
  local live = live_overrides(controls_key, rec.scope, now)
  local cur = live[rec.limit]
  if cur and override_seq(cur.id) > override_seq(rec.id) then return false end
  live[rec.limit] = {v = rec.value, u = rec.u, id = rec.id}
  store_overrides(controls_key, rec.scope, live)
  return true
end

local function take_out_of_force(controls_key, rec, now)
  local live = live_overrides(controls_key, rec.scope, now)
  local cur = live[rec.limit]
  if cur and cur.id == rec.id then live[rec.limit] = nil end
  store_overrides(controls_key, rec.scope, live)
end

-- A duration for people: 28800000 -> "8h", 90000 -> "90s".
local function duration_text(ms)
  for _, u in ipairs({{3600000, 'h'}, {60000, 'm'}, {1000, 's'}}) do
    if ms % u[1] == 0 then return string.format('%d%s', ms / u[1], u[2]) end
  end
  return string.format('%dms', ms)
end

-- The policy value an override of (scope, limit) for for_ms would replace,
-- or nil, code, field, message when the live policy does not allow it. The
-- longest duration is meta|ovmax, 8 h when the policy sets none.
local function override_target(policy_key, scope, limit, for_ms)
  local v = rcall('HMGET', policy_key, scope, 'meta|ovmax')
  if not v[1] then
    return nil, R.UNKNOWN_NODE, 'scope', scope .. ' is not a node of the firm policy'
  end
  local node = cmsgpack.unpack(v[1])
  local old = node.l and node.l[limit]
  if not old then
    return nil, R.INVALID_ORDER, 'limit',
      limit .. ' is not set at ' .. scope .. '; only a limit the policy sets can be overridden'
  end
  local ovmax = tonumber(v[2]) or 28800000
  if for_ms > ovmax then
    return nil, R.INVALID_ORDER, 'duration',
      duration_text(for_ms) .. ' is longer than overrides.max_duration (' .. duration_text(ovmax) .. ')'
  end
  return old
end
