"""The message-window ring of lua/includes/windows.lua, run on the server against a reference."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.facade.views import ring_count
from ledger.store.scripts import lua_dir

WIDTH = 100  # ms per bucket: a 1 s window
SLOTS = 11

DRIVER = """
local r = nil
local out = {}
for i, step in ipairs(cjson.decode(ARGV[1])) do
  local now = step[2]
  if step[1] == 1 then r = ring_add(r, WIDTH, now) end
  out[#out + 1] = ring_count(r, WIDTH, now)
end
return {cjson.encode(out), cjson.encode(r or {})}
""".replace("WIDTH", str(WIDTH))


def reference(steps: list[tuple[int, int]]) -> list[int]:
    """Messages whose bucket is one of the 11 newest at each step (time never goes back here)."""
    added: list[int] = []
    counts = []
    for op, now in steps:
        if op == 1:
            added.append(now // WIDTH)
        cur = now // WIDTH
        counts.append(sum(1 for b in added if cur - SLOTS < b <= cur))
    return counts


def run(redis_client, steps):
    text = (lua_dir() / "includes" / "windows.lua").read_text() + DRIVER
    counts, ring = redis_client.eval(text, 0, json.dumps(steps))
    return json.loads(counts), json.loads(ring)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 2500)), min_size=1, max_size=60).map(
        lambda xs: list(zip([x[0] for x in xs], sorted(x[1] for x in xs), strict=True))
    )
)
def test_ring_counts_exactly_the_newest_eleven_buckets(redis_client, steps):
    counts, ring = run(redis_client, steps)
    assert counts == reference(steps)
    if ring:
        # Python's reading of a stored ring (utilization) agrees with Lua's.
        assert ring_count(ring, WIDTH * 10, steps[-1][1]) == counts[-1]


def test_the_limit_is_never_exceeded_in_any_true_window(redis_client):
    """Admit while count + 1 <= 5: no 1000 ms sliding window ever holds more than 5."""
    text = (
        (lua_dir() / "includes" / "windows.lua").read_text()
        + """
local r, admitted = nil, {}
for _, now in ipairs(cjson.decode(ARGV[1])) do
  if ring_count(r, 100, now) + 1 <= 5 then
    r = ring_add(r, 100, now)
    admitted[#admitted + 1] = now
  end
end
return cjson.encode(admitted)
"""
    )
    times = list(range(0, 5000, 37))
    admitted = json.loads(redis_client.eval(text, 0, json.dumps(times)))
    assert len(admitted) > 10
    for t in admitted:
        assert sum(1 for a in admitted if t - 1000 < a <= t) <= 5
