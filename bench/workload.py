"""Generated policies and orders, and the benchmark's pipelined reserve.

A benchmark firm is a regular tree: ``desks`` desks, ``accounts`` accounts
spread over them, one strategy per account (entitled to it) and ``traders``
traders, trader ``i`` entitled to account ``i % accounts`` and its strategy.
Its limits come in four sets:

- ``core``: per-order qty and notional caps, open-order count, gross and net
  notional at all five levels; no message windows.
- ``full``: ``core`` plus a per-second and a per-10-second message window
  at all five levels (what reports before the controls of
  docs/controls-layout.md called all controls).
- ``all``: ``full`` plus every control of docs/controls-layout.md: a symbol
  tier with a price collar (so a fresh reference price is needed, see
  :func:`arm_controls`), accounts entitled to symbols (through a group) and
  venues, strategy and account ``state: enabled``, a duplicate-order guard,
  ``max_symbol_notional`` on accounts and desks, ``max_daily_loss`` and
  ``max_basket_notional`` everywhere, ``cancel_to_new`` and ``fill_throttle``
  on strategies, a trading day in a zone with daylight saving. Tiers are
  policy-wide, so an ``all`` firm has a policy (a key prefix) to itself.
- ``gross``: only a gross notional budget per level (what the WATCH/MULTI
  alternative implements), the firm's given by ``firm_gross_minor``.

Limits other than ``firm_gross_minor`` are far above anything the benchmark
sends: a check costs the same whether or not it passes, and an accepted
order is the path that does the most work. The tier's caps and collar are
realistic, and the orders of an ``all`` firm stay inside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger import Decision, Ledger, Order

__all__ = [
    "FirmShape",
    "policy_doc",
    "orders",
    "capture_reserve",
    "reserve_many",
    "arm_controls",
    "refresh_prices",
    "ORDER_NOTIONAL_MINOR",
]

#: Every generated order: 10 @ 100.25, i.e. 1002.50 USD = 100250 cents.
QTY, PRICE = "10", "100.25"
ORDER_NOTIONAL_MINOR = 100_250
_HUGE_MONEY = "10000000000"  # 1e10 USD = 1e12 minor units: never reached
_HUGE_COUNT = 1_000_000_000
#: ``all`` firms: the one symbol traded, its venue, and the tier it is in.
SYMBOL, VENUE = "XYZ", "XNAS"
_TIER = {
    "price_collar_bps": 100,
    "max_order_qty": 50_000,
    "max_order_notional": "2000000",
    "symbols": [SYMBOL, "ABC"],
}
#: Qty and price steps of ``all`` orders: 100 x 10,000 distinct (qty, price) pairs, so the
#: duplicate guard never sees one twice among a million orders; every price within
#: 0.5 of 100.25, inside the tier's 1% collar around the reference price.
_QTY_STEPS, _PRICE_STEPS = 100, 10_000


@dataclass(frozen=True)
class FirmShape:
    id: str
    controls: str = "core"  # core | full | all | gross
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
        if self.controls in ("full", "all"):
            out["messages"] = {"per_second": self.window_per_second, "per_10s": self.window_per_10s}
        if self.controls == "all":
            out.update(_all_limits(level))
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
            if self.controls == "all" and level in ("account", "strategy"):
                out["state"] = "enabled"
            if self.controls == "all" and level == "account":
                out["symbols"] = ["group:bench"]
                out["venues"] = [VENUE, "XNYS"]
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


def _all_limits(level: str) -> dict[str, Any]:
    """What an ``all`` firm sets at ``level`` beyond ``full``'s limits."""
    out: dict[str, Any] = {"max_daily_loss": _HUGE_MONEY, "max_basket_notional": _HUGE_MONEY}
    if level in ("account", "desk"):
        out["max_symbol_notional"] = _HUGE_MONEY
    if level == "account":
        out["duplicate_window_ms"] = 2_000
    if level == "strategy":
        out["cancel_to_new"] = {"max_ratio": "50", "window_s": 60, "min_messages": 20}
        # Far above the fills a scenario sends: tripping it would disable the strategy.
        out["fill_throttle"] = {"trigger_count": _HUGE_COUNT, "window_s": 10}
    return out


def policy_doc(firms: Iterable[FirmShape]) -> dict[str, Any]:
    """A policy document holding every given firm."""
    shapes = list(firms)
    doc: dict[str, Any] = {
        "version": 1,
        "currency": "USD",
        "minor_units": 2,
        "firms": [],
        "strategies": [],
        "traders": [],
    }
    kinds = {shape.controls == "all" for shape in shapes}
    if len(kinds) > 1:
        # Tiers apply to every firm of a policy: a core firm beside them would not be core.
        raise ValueError("an 'all' firm cannot share a policy with other firms")
    if kinds == {True}:
        doc.update(
            trading_day={"rolls_at": "17:00", "zone": "America/New_York"},
            reference_prices={"max_age_ms": 60_000, "max_jump_pct": "10"},
            overrides={"max_duration": "8h"},
            symbol_groups={"bench": [SYMBOL, "ABC"]},
            tiers={"bench": _TIER},
        )
    for shape in shapes:
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
    """``n`` orders round-robin over the firm's traders, buys and sells alternating.

    An ``all`` firm's orders go to its venue, and order ``i`` has a (qty, price)
    of its own (up to a million orders), so its duplicate guard lets them all pass.
    """
    paths = paths or shape.paths()
    for i in range(start, start + n):
        account, strategy, trader = paths[i % len(paths)]
        if shape.controls == "all":
            step = (i // _QTY_STEPS) % _PRICE_STEPS - _PRICE_STEPS // 2
            yield Order(
                f"{tag}-{i}",
                trader,
                strategy,
                account,
                SYMBOL,
                "buy" if i % 2 == 0 else "sell",
                str(1 + i % _QTY_STEPS),
                str(Decimal(PRICE) + Decimal(step).scaleb(-4)),
                venue=VENUE,
            )
            continue
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


def refresh_prices(lg: Ledger) -> None:
    """A fresh reference price for the ``all`` firms' symbol (the policy's max age is 60 s)."""
    lg.prices.set({SYMBOL: PRICE}, by="bench")


def arm_controls(lg: Ledger, shape: FirmShape) -> None:
    """The runtime controls of an ``all`` firm: a reference price, a stress factor and an
    override in force, both at the firm, so every order's path carries them."""
    refresh_prices(lg)
    firm = f"firm:{shape.id}"
    lg.stress.on(firm, "0.9", by="bench", reason="benchmark: stress factor in force")
    # A decrease is in force at once; an increase would wait for two approvals.
    ov = lg.overrides.request(
        firm, "max_open_orders", _HUGE_COUNT - 1, duration="8h", ticket="BENCH-1", by="bench"
    )
    if ov.until_ms is None:
        raise RuntimeError(f"override {ov.id} is not in force: {ov.status}")


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
