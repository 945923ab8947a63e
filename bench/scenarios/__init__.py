"""The scenario groups, in the order a run executes them, and what they share.

Every scenario is a module with ``TITLE`` and ``run(ctx) -> dict``. Its
result holds whatever it measured plus ``rows``: the lines it contributes to
the summary table (see :func:`row`). Each scenario works under its own key
prefix and measures its own baseline, so scenarios do not lean on each
other's figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.floors import Floors
from bench.harness import Progress
from bench.settings import Mode
from bench.workers import Pool
from bench.workload import FirmShape, policy_doc
from ledger import Ledger, parse_policy

__all__ = ["Context", "row", "ORDER"]

#: Scenario modules (under bench.scenarios), in run order.
ORDER = (
    "floors",
    "server_side",
    "controls",
    "profile",
    "library",
    "durable",
    "watch_multi",
    "limiters",
    "gateway",
    "growth_orders",
    "growth_nodes",
    "growth_windows",
)


@dataclass
class Context:
    mode: Mode
    url: str
    #: A ``redis.Redis``; typed ``Any`` because redis-py's synchronous return types are
    #: declared as unions with ``Awaitable``.
    client: Any
    progress: Progress
    _pool: Pool | None = field(default=None, repr=False)
    _floors: Floors | None = field(default=None, repr=False)

    @property
    def pool(self) -> Pool:
        """The racing worker processes, spawned on first use."""
        if self._pool is None:
            self.progress.say("spawning 8 worker processes")
            self._pool = Pool(8)
        return self._pool

    @property
    def floors(self) -> Floors:
        if self._floors is None:
            self._floors = Floors(self.client)
        return self._floors

    def flush(self) -> None:
        """Empty the server (scripts stay loaded) and restore the floor keys."""
        self.client.flushall()
        self._floors = None

    def ledger(self, prefix: str, *firms: FirmShape, **kwargs: Any) -> Ledger:
        """A ledger under ``prefix`` with a policy holding ``firms``, scripts loaded."""
        lg = Ledger.from_url(self.url, prefix=prefix, timeout_s=60.0, actor="bench", **kwargs)
        if firms:
            lg.load_policy(parse_policy(policy_doc(firms), source=f"bench:{prefix}"), by="bench")
        lg.ping()
        return lg

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def row(
    measure: str,
    value: dict[str, Any] | None,
    *,
    vs: str | None = None,
    ratio: dict[str, Any] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One line of the summary table: a figure, and its ratio to a baseline measured beside it."""
    return {"measure": measure, "value": value, "vs": vs, "ratio": ratio, "note": note}
