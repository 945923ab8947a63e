"""The physical floors every ledger figure is compared with, on the same server.

- ``one``: EVALSHA of ``return 1`` (bench/lua/floor_one-0.lua): the cost of
  any script call at all.
- ``five``: the minimal five-level reservation (bench/lua/floor_five-2.lua):
  read five limits, five HINCRBY. What a hierarchical budget cannot go below.
- ``ping``: a PING round trip from Python, the floor of any decision a client
  waits for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from redis.commands.core import Script

from bench.harness import server_cost, timed_calls

__all__ = ["Floors", "LUA_DIR"]

LUA_DIR = Path(__file__).resolve().parent / "lua"
_LIMIT = 10**15


class Floors:
    """The floor scripts registered with one client, on keys under ``prefix``."""

    def __init__(self, client: redis.Redis, prefix: str = "bench") -> None:
        self.client = client
        self.one_script: Script = client.register_script(
            (LUA_DIR / "floor_one-0.lua").read_text(encoding="utf-8")
        )
        self.five_script: Script = client.register_script(
            (LUA_DIR / "floor_five-2.lua").read_text(encoding="utf-8")
        )
        self.limits_key = f"{prefix}:{{floor}}:limits"
        self.used_key = f"{prefix}:{{floor}}:used"
        self.fields = [
            ["firm:F", f"desk:D{i % 2}", f"account:A{i % 8}", f"strategy:S{i % 8}", f"trader:T{i}"]
            for i in range(64)
        ]
        limits: dict[str, Any] = {}
        for path in self.fields:
            limits.update({f: _LIMIT for f in path})
        client.hset(self.limits_key, mapping=limits)
        # Load both scripts now, so no NOSCRIPT round trip lands in a measurement.
        self.one()
        self.five(0)

    def one(self, _i: int = 0) -> Any:
        return self.one_script(keys=[], args=[])

    def five(self, i: int) -> Any:
        return self.five_script(
            keys=[self.limits_key, self.used_key], args=[*self.fields[i % 64], 100_250]
        )

    # -- measurements --------------------------------------------------------------

    def server_us(self, which: str, n: int) -> float:
        """Redis CPU µs per call of the ``one`` or ``five`` floor over ``n`` calls."""
        fn = self.one if which == "one" else self.five

        def work() -> None:
            for i in range(n):
                fn(i)

        return server_cost(self.client, work)[0]

    def ping_samples(self, n: int) -> tuple[list[int], float]:
        """Latencies (ns) of ``n`` PING round trips and their wall time (s)."""
        ping = self.client.ping
        return timed_calls(lambda _i: ping(), n)
