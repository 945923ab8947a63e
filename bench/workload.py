"""Generated policies and orders, and the benchmark's pipelined reserve.

A benchmark firm is a regular tree: ``desks`` desks, ``accounts`` accounts
spread over them, one strategy per account (entitled to it) and ``traders``
traders, trader ``i`` entitled to account ``i % accounts`` and its strategy.
Its limits come in three sets:

- ``core``: per-order qty and notional caps, open-order count, gross and net
  notional at all five levels; no message windows.
- ``full``: ``core`` plus a per-second and a per-10-second message window
  at all five levels: every kind of control the policy model has, everywhere.
- ``gross``: only a gross notional budget per level (what the WATCH/MULTI
  alternative implements), the firm's given by ``firm_gross_minor``.

Limits other than ``firm_gross_minor`` are far above anything the benchmark
sends: a check costs the same whether or not it passes, and an accepted
order is the path that does the most work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ledger import Decision, Ledger, Order

__all__ = [
    "FirmShape",
    "policy_doc",
    "orders",
    "capture_reserve",
    "reserve_many",
    "ORDER_NOTIONAL_MINOR",
]

#: Every generated order: 10 @ 100.25, i.e. 1002.50 USD = 100250 cents.
QTY, PRICE = "10", "100.25"
ORDER_NOTIONAL_MINOR = 100_250
_HUGE_MONEY = "10000000000"  # 1e10 USD = 1e12 minor units: never reached
_HUGE_COUNT = 1_000_000_000


@dataclass(frozen=True)
class FirmShape:
    id: str
    controls: str = "core"  # core | full | gross
    traders: int = 16
    accounts: int = 4
    desks: int = 2
    #: Messages per second / per 10 s of the ``full`` windows (and of ``window_only``).
    window_per_second: int = _HUGE_COUNT
    window_per_10s: int = _HUGE_COUNT
    #: ``gross`` controls: the firm's budget, minor units (a multiple of 100).
    firm_gross_minor: int = 0
    #: Only a per-second window at the traders (for the window comparisons); no other limit.
    window_only: bool = False
    #: With ``window_only``: how many traders (the first ones) have the window; 0 for all.
    window_traders: int = 0

    def paths(self) -> list[tuple[str, str, str]]:
        """``(account, strategy, trader)`` of every trader, in trader order."""
        return [
            (self._account(i % self.accounts), self._strategy(i % self.accounts), self._trader(i))
            for i in range(self.traders)
        ]

    def _account(self, i: int) -> str:
        return f"{self.id}-A{i}"

    def _strategy(self, i: int) -> str:
        return f"{self.id}-S{i}"

    def _trader(self, i: int) -> str:
        return f"{self.id}-T{i}"

    def _desk(self, i: int) -> str:
        return f"{self.id}-D{i}"

    def limits(self, level: str, index: int = 0) -> dict[str, Any] | None:
        if self.window_only:
            windowed = not self.window_traders or index < self.window_traders
            if level == "trader" and self.window_per_second and windowed:
                return {"messages": {"per_second": self.window_per_second}}
            return None
        if self.controls == "gross":
            if level == "firm":
                major, minor = divmod(self.firm_gross_minor, 100)
                return {"max_gross_notional": f"{major}.{minor:02d}"}
            return {"max_gross_notional": _HUGE_MONEY}
        out: dict[str, Any] = {
            "max_order_qty": _HUGE_COUNT,
            "max_order_notional": _HUGE_MONEY,
            "max_open_orders": _HUGE_COUNT,
            "max_gross_notional": _HUGE_MONEY,
            "max_net_notional": _HUGE_MONEY,
        }
        if self.controls == "full":
            out["messages"] = {"per_second": self.window_per_second, "per_10s": self.window_per_10s}
        return out

    def gross_limits_minor(self) -> dict[str, int]:
        """``gross`` controls: the budget of every level, minor units, by level name."""
        huge = int(_HUGE_MONEY) * 100
        return {
            "firm": self.firm_gross_minor,
            "desk": huge,
            "account": huge,
            "strategy": huge,
            "trader": huge,
        }

    def document(self) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """The firm entry, its strategies and its traders, as policy-document parts."""

        def node(node_id: str, level: str, index: int = 0, **extra: Any) -> dict[str, Any]:
            out: dict[str, Any] = {"id": node_id, **extra}
            lim = self.limits(level, index)
            if lim:
                out["limits"] = lim
            return out

        desks = [node(self._desk(d), "desk", accounts=[]) for d in range(self.desks)]
        for a in range(self.accounts):
            desks[a % self.desks]["accounts"].append(node(self._account(a), "account"))
        firm = node(self.id, "firm", desks=desks)
        strategies = [
            node(self._strategy(a), "strategy", accounts=[self._account(a)])
            for a in range(self.accounts)
        ]
        traders = [
            node(trader, "trader", i, accounts=[account], strategies=[strategy])
            for i, (account, strategy, trader) in enumerate(self.paths())
        ]
        return firm, strategies, traders


def policy_doc(firms: Iterable[FirmShape]) -> dict[str, Any]:
    """A policy document holding every given firm."""
    doc: dict[str, Any] = {
        "version": 1,
        "currency": "USD",
        "minor_units": 2,
        "firms": [],
        "strategies": [],
        "traders": [],
    }
    for shape in firms:
        firm, strategies, traders = shape.document()
        doc["firms"].append(firm)
        doc["strategies"] += strategies
        doc["traders"] += traders
    return doc


def orders(
    shape: FirmShape,
    n: int,
    tag: str,
    start: int = 0,
    paths: Sequence[tuple[str, str, str]] | None = None,
) -> Iterator[Order]:
    """``n`` orders round-robin over the firm's traders, buys and sells alternating."""
    paths = paths or shape.paths()
    for i in range(start, start + n):
        account, strategy, trader = paths[i % len(paths)]
        yield Order(
            f"{tag}-{i}",
            trader,
            strategy,
            account,
            "XYZ",
            "buy" if i % 2 == 0 else "sell",
            QTY,
            PRICE,
        )


def capture_reserve(lg: Ledger, order: Order) -> tuple[list[str], list[Any]]:
    """The keys and arguments :meth:`Ledger.reserve` sends for ``order``."""
    call = lg.reserve_call(order)
    if isinstance(call, Decision):
        raise RuntimeError(f"{order.order_id}: decided without a script call: {call.reason}")
    _firm, keys, args = call
    return keys, args


def reserve_many(lg: Ledger, batch: Sequence[Order]) -> list[Decision]:
    """One round trip per batch: :meth:`Ledger.reserve_many`."""
    return lg.reserve_many(list(batch))


def fill_pipelined(lg: Ledger, all_orders: Iterable[Order], batch: int = 500) -> int:
    """Reserve every order, ``batch`` per round trip; the number accepted."""
    accepted = 0
    chunk: list[Order] = []
    for order in all_orders:
        chunk.append(order)
        if len(chunk) == batch:
            accepted += sum(d.accepted for d in reserve_many(lg, chunk))
            chunk = []
    if chunk:
        accepted += sum(d.accepted for d in reserve_many(lg, chunk))
    return accepted
