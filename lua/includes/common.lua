--[[
  Helpers shared by every script: server time, audit, number coercion.
  Lua's tostring() prints large numbers as 4.5e+15, so numbers are handed to
  redis.call (which writes integers exactly) and never concatenated.
]]
-- Set by begin_call(): a Redis Function's library is loaded where redis.call
-- does not exist yet (ledger/library.py), so it is bound when a call starts.
local rcall

local function now_ms()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Unarchived records of an audit stream by key: false when no archiver is
-- registered (no consumer group "archive", see ledger/archive.py), else the
-- group's lag plus its pending count. Read once per call (XINFO GROUPS is
-- O(1) per group) and counted up here as this call appends.
local archive_backlogs = {}

local function archive_backlog(key)
  local b = archive_backlogs[key]
  if b ~= nil then return b end
  b = false
  -- pcall: a stream not yet written has no key, hence no group.
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local f = {}
      for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
      if f.name == 'archive' then
        -- lag is unknown only after an XDEL: then count the whole stream as unarchived.
        b = f.lag and (f.lag + f.pending) or rcall('XLEN', key)
      end
    end
  end
  archive_backlogs[key] = b
  return b
end

-- Appends one msgpack record to a bounded audit stream. The entry id carries
-- the server time in ms; approximate trimming is O(1). With an archiver
-- registered the bound never drops an unarchived record: the archiver
-- acknowledges in id order, so its backlog is the newest records, and the
-- stream keeps at least that many.
local function audit(key, maxlen, record)
  local b = archive_backlog(key)
  local keep = maxlen
  if b then
    keep = math.max(tonumber(maxlen), b + 1)
    archive_backlogs[key] = b + 1
  end
  rcall('XADD', key, 'MAXLEN', '~', keep, '*', 'm', cmsgpack.pack(record))
end

-- True when the firm's policy sets audit.require_archive ("meta|ra") and the
-- unarchived backlog reached the bound: new risk is then refused rather than
-- recorded past what the archiver can keep up with. The policy field is read
-- only in that case, so a healthy archive costs one XINFO per call.
local function archive_behind(policy_key, audit_key, maxlen)
  local b = archive_backlog(audit_key)
  return b and b >= tonumber(maxlen) and rcall('HGET', policy_key, 'meta|ra') == '1'
end

--[[
  Exact sums. Every stored sum (notional, qty, counts, P&L) is a Lua number,
  a double: beyond 2^53 - 1 it would silently round. exact_add is the one way
  a script adds to a stored sum; the first sum that leaves the exact range is
  remembered in `inexact` ({what, where, sum so far, addend}), and the script
  checks it before writing anything and refuses (INVALID_ORDER) rather than
  store a rounded figure. Both operands are exact integers within the range,
  so a true sum beyond it rounds to at least 2^53: the test is sound.
]]
local EXACT_MAX = 9007199254740991
local inexact = nil

local function exact_add(a, b, what, where)
  local s = a + b
  if (s > EXACT_MAX or s < -EXACT_MAX) and not inexact then
    inexact = {what, where or '', a, b}
  end
  return s
end

-- What inexact names, as a sentence for the caller (numbers are never concatenated).
local function inexact_message()
  local where = inexact[2] ~= '' and (' of ' .. inexact[2]) or ''
  return inexact[1] .. where .. ' would pass 2^53 - 1 and lose exactness; nothing changed'
end

-- Names of the node array's sums (exposure.lua) and of a position's.
local NODE_SUMS = {'open buy notional', 'open sell notional', 'filled buy notional',
  'filled sell notional', 'open orders'}
local POSITION_SUMS = {'open buy notional', 'open sell notional', 'filled buy notional',
  'filled sell notional', 'open buy qty', 'open sell qty', 'filled qty'}

--[[
  Per-call state, and the first thing every script runs (the loader puts the
  call there). A script run by EVALSHA starts afresh each time; a Redis
  Function's library keeps its locals from one call to the next, so what
  belongs to one call is reset here.
]]
-- What an include keeps for one call only registers its reset here: a
-- library's locals outlive the call, and one firm's or one load's values must
-- never reach the next call.
local call_resets = {}
local function per_call(reset) call_resets[#call_resets + 1] = reset end

local function begin_call()
  rcall = redis.call
  archive_backlogs = {}
  inexact = nil
  for _, reset in ipairs(call_resets) do reset() end
end
