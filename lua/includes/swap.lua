-- Swap a staged hash in as the live one, unless the live one is already of this
-- revision or newer (a later load won a race): then the staged copy is dropped.
-- Returns the code and the revision that was live before.
local function swap_staged(live_key, next_key, rev)
  if rcall('HGET', next_key, 'meta|rev') ~= rev then
    return R.NO_POLICY, false
  end
  local previous = rcall('HGET', live_key, 'meta|rev')
  if previous and tonumber(previous) >= tonumber(rev) then
    rcall('UNLINK', next_key)
    return R.NO_POLICY, previous
  end
  -- UNLINK frees the old hash off the main thread; RENAME would free it inline.
  rcall('UNLINK', live_key)
  rcall('RENAME', next_key, live_key)
  -- The staged copy expires in case its loader dies; RENAME carries that over.
  rcall('PERSIST', live_key)
  return R.OK, previous
end
