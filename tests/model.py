"""A plain-Python reference model of the ledger, for tests/test_property.py.

The model re-derives every decision from the policy document with Python
ints, Decimal and Fraction; it shares no arithmetic and no policy parsing with
the ledger. It follows the check order of lua/reserve-n.lua:

* idempotency (a single order's decision is remembered with its id, except
  the path rejects a policy load may cure), then KILL_SWITCH;
* path rejects, never remembered: NOT_ENTITLED at the strategy, then the
  trader, then the account (its symbols), then UNKNOWN_SYMBOL;
* STRATEGY_DISABLED at the strategy, then the account (a runtime state wins
  over the policy's);
* prices: REFERENCE_PRICE_STALE, PRICE_COLLAR (|price - ref| * 10000 >
  collar bps * ref, used = that distance in bps rounded up);
* DUPLICATE_ORDER: same (account, symbol, side, qty, price) as an order
  accepted on a path with a duplicate window; the longest window on the path
  decides (the first node on a tie), and it may be a shadow limit;
* REDUCE_ONLY at the strategy, then the account: the order must shrink the
  node's signed filled qty in the symbol, its open orders on that side counted;
  then, for an order flagged reduce_only (or a replace of one), the same at
  every node of its path, firm first;
* notional is qty x price x the symbol's contract multiplier, rounded up to
  the minor unit (the tier ``thin`` has multiplier 0.3);
* the limits, each over firm, desk, account, strategy, trader: MAX_ORDER_QTY
  and MAX_ORDER_NOTIONAL (the symbol's tier first, never shadow),
  OPEN_ORDERS_LIMIT, GROSS_LIMIT, NET_LIMIT, CONCENTRATION_LIMIT (the net in
  the order's symbol), DAILY_LOSS_LIMIT (the day's realized loss has reached
  the limit and the order does not reduce the node's position);
* a basket decides its legs in turn against the state the earlier legs
  leave, and then holds each node's basket total to max_basket_notional; a
  rejected basket leaves nothing behind. An id seen before may only come
  back in the basket that reserved it, with the same fields: a basket of
  such ids only is replayed, one that adds new legs is refused.
* a replay says what the order is now (``state``): open, or rejected as it
  was; an order since filled or released replays as ORDER_CLOSED (a basket:
  at its first such leg), never as an acceptance.
* time in force (lua/includes/expiry.lua): an open order is due at its
  expire time (GTD), after the IOC grace (IOC, FOK), at the roll (DAY, never
  within a run), never (GTC). Every reserve, basket and replace first retires
  the EXPIRE_PER_DECISION open orders due earliest (ties by order id), a
  replace then its own order if due; the sweep retires all. Retiring is a
  release. The first fill of an IOC or FOK order that leaves some open
  releases the rest (reserved 0 in the answer).

Message windows, the cancel-to-new ratio and the fill throttle are set far
beyond what a run can send (they depend on time), so their code runs and
never refuses. Reference prices are set once and never go stale within a run;
the trading day rolls half a day away from the test (see ``ROLLS_AT``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ledger import Decision, Order, Reason
from ledger.facade.results import BasketDecision
from ledger.policy.lifecycle import DEFAULT_IOC_GRACE_MS, EXPIRE_PER_DECISION, expire_ms

MINOR_UNITS = 2
FIRM = "F"
#: Far above anything a test run can send: the window code runs, never refuses.
HUGE = 1_000_000_000
#: Reference prices are set once per example; nothing in a run gets this old.
MAX_AGE_MS = 864_000_000
#: Long enough that no duplicate guard expires within a run: the model needs no clock.
HOUR_MS = 3_600_000
#: Half a day from now, so that the daily P&L never rolls over during a run.
ROLLS_AT = (datetime.now(UTC) + timedelta(hours=12)).strftime("%H:%M")

DOC: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": MINOR_UNITS,
    "trading_day": {"rolls_at": ROLLS_AT, "zone": "UTC"},
    "reference_prices": {"max_age_ms": MAX_AGE_MS, "max_jump_pct": "50"},
    "symbol_groups": {"core": ["XYZ", "ABC"]},
    "tiers": {
        "core": {
            "price_collar_bps": 500,
            "max_order_qty": 38,
            "max_order_notional": "150",
            "symbols": ["XYZ", "ABC"],
        },
        # NOPX never gets a reference price: every order in it is stale.
        # A contract multiplier below 1: QQQ's notional is qty x price x 0.3, rounded up.
        "thin": {
            "price_collar_bps": 1000,
            "max_order_qty": 25,
            "multiplier": "0.3",
            "symbols": ["QQQ", "NOPX"],
        },
    },
    "firms": [
        {
            "id": FIRM,
            "limits": {
                "max_gross_notional": "600",
                "max_net_notional": "350",
                "max_open_orders": 8,
                "max_daily_loss": "100",
                "max_basket_notional": "250",
                "messages": {"per_10s": HUGE},
                "cancel_to_new": {"max_ratio": "1", "window_s": 60, "min_messages": HUGE},
            },
            "desks": [
                {
                    "id": "D1",
                    "limits": {
                        "max_gross_notional": "450",
                        "max_open_orders": 6,
                        "max_order_qty": 35,
                        "max_symbol_notional": "250",
                        "max_basket_notional": "150",
                        "shadow": ["max_symbol_notional"],
                    },
                    "accounts": [
                        {
                            "id": "A1",
                            "limits": {
                                "max_order_notional": "120",
                                "max_order_qty": 30,
                                "max_symbol_notional": "90",
                                "duplicate_window_ms": HOUR_MS,
                            },
                        },
                        {
                            "id": "A2",
                            "limits": {
                                "max_order_notional": "140",
                                "max_net_notional": "150",
                                "max_daily_loss": "10",
                            },
                        },
                    ],
                },
                {
                    "id": "D2",
                    "limits": {
                        "max_gross_notional": "200",
                        "max_net_notional": "150",
                        "max_symbol_notional": "100",
                        "max_daily_loss": "30",
                        "duplicate_window_ms": 2 * HOUR_MS,
                    },
                    "accounts": [
                        {
                            "id": "A3",
                            "limits": {"max_order_qty": 28, "max_open_orders": 3},
                            "symbols": ["group:core"],
                        },
                        # Disabled from the start; a runtime state wins over it.
                        {"id": "A4", "state": "disabled"},
                    ],
                },
            ],
        }
    ],
    "strategies": [
        {
            "id": "S1",
            "accounts": ["A1", "A2"],
            "limits": {
                "max_gross_notional": "250",
                "max_daily_loss": "10",
                "fill_throttle": {"trigger_count": HUGE, "window_s": 60},
                "shadow": ["max_daily_loss"],
            },
        },
        {
            "id": "S2",
            "accounts": ["A2", "A3"],
            "limits": {
                "max_net_notional": "100",
                "max_open_orders": 4,
                # Ties with D2's window for A3: the desk, first on the path, decides.
                "duplicate_window_ms": 2 * HOUR_MS,
                "shadow": ["max_net_notional", "duplicate_window_ms"],
            },
        },
        # Reduce-only from the start: a strategy with no position can only be refused.
        {"id": "S3", "accounts": ["A1", "A3", "A4"], "state": "reduce_only"},
    ],
    "traders": [
        {
            "id": "T1",
            "accounts": ["A1", "A2", "A3", "A4"],
            "strategies": ["S1", "S2", "S3"],
            "limits": {
                "max_gross_notional": "350",
                "max_order_notional": "100",
                "shadow": ["max_order_notional"],
            },
        },
        # T2 may not trade A1 nor S1; S1 may not trade A3.
        {
            "id": "T2",
            "accounts": ["A2", "A3"],
            "strategies": ["S2"],
            "limits": {
                "max_open_orders": 3,
                "max_order_qty": 20,
                "max_daily_loss": "15",
                "max_basket_notional": "100",
            },
        },
    ],
}

#: Reference prices, set once at the start of every example.
REFERENCE = {"XYZ": "5", "ABC": "2.5", "QQQ": "9.2"}
#: Order prices per symbol: inside, on and beyond the collar; 3 decimals make ceil() round up.
PRICES: dict[str, tuple[str, ...]] = {
    "XYZ": ("4.5", "4.749", "4.75", "4.875", "4.999", "5", "5.125", "5.25", "5.251", "5.5"),
    "ABC": ("2.25", "2.374", "2.375", "2.45", "2.5", "2.505", "2.625", "2.626", "2.75"),
    "QQQ": ("8", "8.279", "8.28", "8.9", "9.2", "9.875", "10.12", "10.121", "11"),
    "NOPX": ("3", "3.333"),
    "ZZZ": ("1", "7.1"),
}
TRADED = ("XYZ", "ABC", "QQQ")

# -- the model's own reading of the policy document -----------------------------------

COUNT_LIMITS = ("max_order_qty", "max_open_orders", "duplicate_window_ms")
MONEY_LIMITS = (
    "max_order_notional",
    "max_gross_notional",
    "max_net_notional",
    "max_symbol_notional",
    "max_daily_loss",
    "max_basket_notional",
)


def minor(amount: str) -> int:
    value = Decimal(amount) * 10**MINOR_UNITS
    assert value == value.to_integral_value(), amount
    return int(value)


#: Contract multipliers of the policy's symbols (1 if not listed).
MULTIPLIERS: dict[str, Fraction] = {"QQQ": Fraction(3, 10), "NOPX": Fraction(3, 10)}


def notional(qty: int, price: Decimal, symbol: str) -> int:
    m = MULTIPLIERS.get(symbol, Fraction(1))
    return int(math.ceil(Fraction(qty) * Fraction(price) * m * 10**MINOR_UNITS))


def net_of(ob: int, os_: int, fb: int, fs: int) -> int:
    f = fb - fs
    return max(abs(f + ob), abs(f - os_))


def canonical(price: Decimal) -> str:
    """A price without trailing zeros, as the duplicate guard compares it."""
    return format(price.normalize(), "f")


@dataclass(frozen=True)
class MNode:
    limits: dict[str, int]
    shadow: frozenset[str]
    state: str = "enabled"
    accounts: frozenset[str] = frozenset()
    strategies: frozenset[str] = frozenset()
    #: For accounts: the symbols it may trade; None means any.
    symbols: frozenset[str] | None = None


@dataclass(frozen=True)
class MTier:
    name: str
    collar_bps: int
    max_order_qty: int | None
    max_order_notional: int | None


def _mnode(spec: dict[str, Any], **kw: Any) -> MNode:
    raw = spec.get("limits", {})
    limits = {name: int(raw[name]) for name in COUNT_LIMITS if name in raw}
    limits |= {name: minor(raw[name]) for name in MONEY_LIMITS if name in raw}
    symbols = None
    if "symbols" in spec:
        groups = DOC.get("symbol_groups", {})
        symbols = frozenset(
            s
            for item in spec["symbols"]
            for s in (groups[item[6:]] if item[:6] == "group:" else [item])
        )
    return MNode(
        limits,
        frozenset(raw.get("shadow", ())),
        spec.get("state", "enabled"),
        symbols=symbols,
        **kw,
    )


def model_nodes(doc: dict[str, Any]) -> tuple[dict[str, MNode], dict[str, tuple[str, str]]]:
    """Scope -> node, and account -> (desk, firm)."""
    nodes: dict[str, MNode] = {}
    route: dict[str, tuple[str, str]] = {}
    for firm in doc["firms"]:
        nodes[f"firm:{firm['id']}"] = _mnode(firm)
        for desk in firm["desks"]:
            nodes[f"desk:{desk['id']}"] = _mnode(desk)
            for account in desk["accounts"]:
                nodes[f"account:{account['id']}"] = _mnode(account)
                route[account["id"]] = (desk["id"], firm["id"])
    for s in doc["strategies"]:
        nodes[f"strategy:{s['id']}"] = _mnode(s, accounts=frozenset(s["accounts"]))
    for t in doc["traders"]:
        nodes[f"trader:{t['id']}"] = _mnode(
            t, accounts=frozenset(t["accounts"]), strategies=frozenset(t["strategies"])
        )
    return nodes, route


def model_tiers(doc: dict[str, Any]) -> dict[str, MTier]:
    """Symbol -> its tier."""
    out: dict[str, MTier] = {}
    for name, spec in doc.get("tiers", {}).items():
        notional_cap = spec.get("max_order_notional")
        tier = MTier(
            name,
            spec["price_collar_bps"],
            spec.get("max_order_qty"),
            minor(notional_cap) if notional_cap is not None else None,
        )
        out |= {symbol: tier for symbol in spec["symbols"]}
    return out


NODES, ROUTE = model_nodes(DOC)
TIER_OF = model_tiers(DOC)
ACCOUNTS, STRATEGIES, TRADERS = ("A1", "A2", "A3", "A4"), ("S1", "S2", "S3"), ("T1", "T2")
ENTITLED = tuple(
    (a, s, t)
    for a in ACCOUNTS
    for s in STRATEGIES
    for t in TRADERS
    if a in NODES[f"strategy:{s}"].accounts
    and a in NODES[f"trader:{t}"].accounts
    and s in NODES[f"trader:{t}"].strategies
)
#: Entitled combinations that can trade (S3 is reduce-only and flat, A4 disabled).
ACTIVE = tuple(
    c
    for c in ENTITLED
    if NODES[f"account:{c[0]}"].state == NODES[f"strategy:{c[1]}"].state == "enabled"
)
STATE_SCOPES = tuple(s for s in NODES if s.startswith(("strategy:", "account:")))
#: Order of the limit checks; message windows and the cancel-to-new ratio never refuse.
CHECK_ORDER = (
    "max_order_qty",
    "max_order_notional",
    "max_open_orders",
    "max_gross_notional",
    "max_net_notional",
    "max_symbol_notional",
    "max_daily_loss",
)
UTIL_LIMITS = ("max_gross_notional", "max_net_notional", "max_open_orders", "max_daily_loss")
BUY, SELL = 0, 1

# -- decisions -----------------------------------------------------------------------------

Breach = tuple[Reason, str | None, int | None, int | None, int | None]


@dataclass(frozen=True)
class Expected:
    """The parts of a Decision the model predicts."""

    accepted: bool
    reason: Reason
    scope: str | None = None
    limit: int | None = None
    used: int | None = None
    requested: int | None = None
    notional: int = 0
    replayed: bool = False
    shadow: tuple[Breach, ...] = ()
    state: str | None = None

    @classmethod
    def of(cls, d: Decision) -> Expected:
        return cls(
            d.accepted,
            d.reason,
            d.scope,
            d.limit,
            d.used,
            d.requested,
            d.notional,
            d.replayed,
            tuple((b.reason, b.scope, b.limit, b.used, b.requested) for b in d.shadow),
            d.state,
        )


def reject(reason: Reason, scope: str | None = None, **kw: Any) -> Expected:
    return Expected(False, reason, scope, **kw)


@dataclass(frozen=True)
class BasketExpected:
    """The parts of a BasketDecision the model predicts; legs as (order id, decision)."""

    accepted: bool
    reason: Reason
    leg: int = 0
    failing_order: str | None = None
    legs: tuple[tuple[str, Expected], ...] = ()
    scope: str | None = None
    limit: int | None = None
    used: int | None = None
    requested: int | None = None

    @classmethod
    def of(cls, b: BasketDecision) -> BasketExpected:
        return cls(
            b.accepted,
            b.reason,
            b.leg,
            b.failing_order,
            tuple((d.order_id, Expected.of(d)) for d in b.legs),
            b.scope,
            b.limit,
            b.used,
            b.requested,
        )


# -- state ---------------------------------------------------------------------------------


@dataclass
class Agg:
    ob: int = 0
    os: int = 0
    fb: int = 0
    fs: int = 0
    n: int = 0
    #: Realized P&L of the day, minor units.
    pnl: int = 0

    @property
    def gross(self) -> int:
        return self.ob + self.os + self.fb + self.fs

    @property
    def net(self) -> int:
        return net_of(self.ob, self.os, self.fb, self.fs)

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (self.ob, self.os, self.fb, self.fs, self.n, self.pnl)


@dataclass
class MOrder:
    path: tuple[str, ...]
    symbol: str
    side: str
    qty: int
    price: Decimal
    res: int
    status: str = "open"
    cum: int = 0
    fn: int = 0
    fills: set[str] = field(default_factory=set)
    tif: str = "DAY"
    #: Due time in ms of server time; None: not within a run (GTC, DAY).
    due: int | None = None
    #: The order's own reduce-only flag (set at entry or by a replace; it stays).
    ro: bool = False

    @property
    def leaves(self) -> int:
        return max(self.qty - self.cum, 0)

    @property
    def ix(self) -> int:
        return BUY if self.side == "buy" else SELL


Fingerprint = tuple[str, str, str, str, str, int, Decimal, str, int | None, bool]


def fingerprint(o: Order) -> Fingerprint:
    expires = expire_ms(o.expire_time) if o.expire_time is not None else None
    return (
        o.trader,
        o.strategy,
        o.account,
        o.symbol,
        o.side,
        int(o.qty),
        Decimal(str(o.price)),
        o.time_in_force,
        expires,
        o.reduce_only,
    )


def path_of(o: Order) -> tuple[str, ...]:
    desk, firm = ROUTE[o.account]
    return (
        f"firm:{firm}",
        f"desk:{desk}",
        f"account:{o.account}",
        f"strategy:{o.strategy}",
        f"trader:{o.trader}",
    )


def reduces(p: list[int], side: str, qty: int) -> bool:
    """The order only shrinks the signed filled qty p[6], open orders on its side included."""
    if side == "buy":
        return p[6] < 0 and p[4] + qty <= -p[6]
    return p[6] > 0 and p[5] + qty <= p[6]


def dup_window(path: tuple[str, ...]) -> tuple[int, str | None]:
    """The longest duplicate window on the path, and the first node that sets it."""
    window, at = 0, None
    for scope in path:
        w = NODES[scope].limits.get("duplicate_window_ms", 0)
        if w > window:
            window, at = w, scope
    return window, at


@dataclass
class Req:
    """What the limit checks look at: see req in lua/includes/checks.lua."""

    qty: int
    order_notional: int
    delta: int
    side: str
    opens: int
    symbol: str
    grows: Callable[[str], bool]


class Model:
    def __init__(self) -> None:
        self.agg: dict[str, Agg] = {scope: Agg() for scope in NODES}
        #: "scope|SYM" -> [ob, os, fb, fs, qb, qs, qn]
        self.pos: dict[str, list[int]] = {}
        self.orders: dict[str, MOrder] = {}
        #: order id -> (fingerprint, first decision) for every remembered reserve.
        self.first: dict[str, tuple[Fingerprint, Expected]] = {}
        #: order id -> the id of the accepted basket that reserved it.
        self.basket_of: dict[str, str] = {}
        self.kills: set[str] = set()
        #: Runtime states of strategies and accounts (none means the policy's).
        self.states: dict[str, str] = {}
        #: Duplicate-guard keys "ACCOUNT|SYM|SIDE|QTY|PRICE" set by accepted orders.
        self.dups: set[str] = set()
        self.messages = 0
        #: Server time, ms: the test clock's.
        self.now = 0

    # time in force

    def due_of(self, o: Order) -> int | None:
        if o.time_in_force == "GTD":
            return expire_ms(o.expire_time)
        if o.time_in_force in ("IOC", "FOK"):
            return self.now + DEFAULT_IOC_GRACE_MS
        return None

    def _retire(self, oid: str) -> None:
        self.release(oid)

    def expire_due(self, limit: int | None = EXPIRE_PER_DECISION) -> int:
        """Retires the open orders due by now, earliest first, at most ``limit``."""
        due = sorted(
            (o.due, oid)
            for oid, o in self.orders.items()
            if o.status == "open" and o.due is not None and o.due <= self.now
        )
        for _, oid in due[:limit]:
            self._retire(oid)
        return len(due[:limit])

    # helpers

    def position(self, scope: str, symbol: str) -> list[int]:
        return self.pos.setdefault(f"{scope}|{symbol}", [0] * 7)

    def _bump(self, o: MOrder, open_delta: int, qty_delta: int) -> None:
        """Moves the order's open notional and open qty at every node of its path."""
        for scope in o.path:
            a, p = self.agg[scope], self.position(scope, o.symbol)
            if o.ix == BUY:
                a.ob += open_delta
            else:
                a.os += open_delta
            p[o.ix] += open_delta
            p[4 + o.ix] += qty_delta

    def killed(self, path: tuple[str, ...]) -> str | None:
        if "global" in self.kills:
            return "global"
        return next((s for s in path if s in self.kills), None)

    def state(self, scope: str) -> str:
        return self.states.get(scope) or NODES[scope].state

    def _hit(self, name: str, scope: str, lim: int, req: Req) -> Breach | None:
        a = self.agg[scope]
        if name == "max_order_qty" and req.qty > lim:
            return (Reason.MAX_ORDER_QTY, scope, lim, 0, req.qty)
        if name == "max_order_notional" and req.order_notional > lim:
            return (Reason.MAX_ORDER_NOTIONAL, scope, lim, 0, req.order_notional)
        if name == "max_open_orders" and req.opens > 0 and a.n + req.opens > lim:
            return (Reason.OPEN_ORDERS_LIMIT, scope, lim, a.n, req.opens)
        if name == "max_gross_notional" and req.delta > 0 and a.gross + req.delta > lim:
            return (Reason.GROSS_LIMIT, scope, lim, a.gross, req.delta)
        if name in ("max_net_notional", "max_symbol_notional"):
            ob, os_, fb, fs = (a.ob, a.os, a.fb, a.fs)
            if name == "max_symbol_notional":
                ob, os_, fb, fs = self.position(scope, req.symbol)[:4]
            before = net_of(ob, os_, fb, fs)
            if req.side == "buy":
                after = net_of(ob + req.delta, os_, fb, fs)
            else:
                after = net_of(ob, os_ + req.delta, fb, fs)
            # An order that does not worsen the net is never blocked by it.
            if after > lim and after > before:
                reason = (
                    Reason.NET_LIMIT if name == "max_net_notional" else Reason.CONCENTRATION_LIMIT
                )
                return (reason, scope, lim, before, after - before)
        if name == "max_daily_loss" and -a.pnl >= lim and req.grows(scope):
            return (Reason.DAILY_LOSS_LIMIT, scope, lim, -a.pnl, req.order_notional)
        return None

    @staticmethod
    def _tier_hit(name: str, req: Req) -> Breach | None:
        tier = TIER_OF.get(req.symbol)
        if tier is None:
            return None
        scope = f"tier:{tier.name}"
        cap = tier.max_order_qty if name == "max_order_qty" else None
        if cap is not None and req.qty > cap:
            return (Reason.MAX_ORDER_QTY, scope, cap, 0, req.qty)
        cap = tier.max_order_notional if name == "max_order_notional" else None
        if cap is not None and req.order_notional > cap:
            return (Reason.MAX_ORDER_NOTIONAL, scope, cap, 0, req.order_notional)
        return None

    def evaluate(
        self, path: tuple[str, ...], notional_: int, req: Req, shadow: Iterable[Breach] = ()
    ) -> Expected:
        found = list(shadow)
        for name in CHECK_ORDER:
            # The tier's caps come first and have no shadow mode.
            hit = self._tier_hit(name, req)
            if hit:
                return Expected(False, *hit, notional_, shadow=tuple(found))
            for scope in path:
                node = NODES[scope]
                lim = node.limits.get(name)
                if lim is None:
                    continue
                hit = self._hit(name, scope, lim, req)
                if hit is None:
                    continue
                if name in node.shadow:
                    found.append(hit)
                    continue
                return Expected(False, *hit, notional_, shadow=tuple(found))
        return Expected(True, Reason.OK, notional=notional_, shadow=tuple(found))

    def _path_reject(self, o: Order, path: tuple[str, ...]) -> Expected | None:
        """What lua/includes/path.lua refuses; such a reject is not remembered."""
        strategy, trader, account = NODES[path[3]], NODES[path[4]], NODES[path[2]]
        if o.account not in strategy.accounts:
            return reject(Reason.NOT_ENTITLED, path[3])
        if o.account not in trader.accounts or o.strategy not in trader.strategies:
            return reject(Reason.NOT_ENTITLED, path[4])
        if account.symbols is not None and o.symbol not in account.symbols:
            return reject(Reason.NOT_ENTITLED, path[2])
        if TIER_OF and o.symbol not in TIER_OF:
            return reject(Reason.UNKNOWN_SYMBOL, f"symbol:{o.symbol}")
        return None

    @staticmethod
    def price_check(symbol: str, price: Decimal) -> Expected | None:
        """Stale or missing reference price, then the collar; the caller sets the notional."""
        tier = TIER_OF[symbol]
        if symbol not in REFERENCE:
            return reject(Reason.REFERENCE_PRICE_STALE, f"symbol:{symbol}", limit=MAX_AGE_MS)
        ref = Fraction(Decimal(REFERENCE[symbol]))
        diff = abs(Fraction(price) - ref)
        if diff * 10000 > tier.collar_bps * ref:
            bps = math.ceil(diff * 10000 / ref)
            where = f"tier:{tier.name}"
            return reject(Reason.PRICE_COLLAR, where, limit=tier.collar_bps, used=bps)
        return None

    # operations

    def _decide(self, oid: str, o: Order) -> tuple[Expected, bool]:
        """A new order's decision, applied to the state if accepted; and whether a
        reject is one a policy load may cure (not remembered)."""
        price, qty = Decimal(str(o.price)), int(o.qty)
        path = path_of(o)
        # A GTD already due by the ledger's clock is refused first, and not remembered.
        if o.time_in_force == "GTD" and o.expire_time is not None:
            expires = expire_ms(o.expire_time)
            if expires <= self.now:
                return reject(Reason.INVALID_ORDER, used=self.now, requested=expires), True
        kill = self.killed(path)
        if kill:
            return reject(Reason.KILL_SWITCH, kill), False
        refused = self._path_reject(o, path)
        if refused:
            return refused, True
        for scope in (path[3], path[2]):
            if self.state(scope) == "disabled":
                return reject(Reason.STRATEGY_DISABLED, scope), False
        amount = notional(qty, price, o.symbol)
        bad = self.price_check(o.symbol, price)
        if bad:
            return replace(bad, notional=amount), False
        shadow: list[Breach] = []
        window, at = dup_window(path)
        key = f"{o.account}|{o.symbol}|{o.side}|{qty}|{canonical(price)}"
        if at is not None and key in self.dups:
            hit = (Reason.DUPLICATE_ORDER, at, window, 0, 0)
            if "duplicate_window_ms" not in NODES[at].shadow:
                return Expected(False, *hit, amount), False
            shadow.append(hit)
        pos = {scope: self.position(scope, o.symbol) for scope in path}
        for scope in (path[3], path[2]):
            if self.state(scope) == "reduce_only" and not reduces(pos[scope], o.side, qty):
                # A decision reports every shadow breach it saw (lua/includes/checks.lua).
                return Expected(
                    False,
                    Reason.REDUCE_ONLY,
                    scope,
                    None,
                    pos[scope][6],
                    qty,
                    amount,
                    shadow=tuple(shadow),
                ), False
        # The order's own flag: it must shrink the position at every node of its path.
        for scope in path if o.reduce_only else ():
            if not reduces(pos[scope], o.side, qty):
                return Expected(
                    False,
                    Reason.REDUCE_ONLY,
                    scope,
                    None,
                    pos[scope][6],
                    qty,
                    amount,
                    shadow=tuple(shadow),
                ), False
        req = Req(
            qty,
            amount,
            amount,
            o.side,
            1,
            o.symbol,
            lambda scope: not reduces(pos[scope], o.side, qty),
        )
        d = self.evaluate(path, amount, req, shadow)
        if d.accepted:
            m = MOrder(path, o.symbol, o.side, qty, price, amount)
            m.tif, m.due, m.ro = o.time_in_force, self.due_of(o), o.reduce_only
            self._bump(m, amount, qty)
            for scope in path:
                self.agg[scope].n += 1
            self.orders[oid] = m
            if at is not None:
                self.dups.add(key)
            self.messages += 1
        return d, False

    def _replay(self, oid: str) -> Expected:
        """The first decision of ``oid`` with what the order is now: a replay of an
        order since filled or released is ORDER_CLOSED, never an acceptance."""
        first = self.first[oid][1]
        o = self.orders.get(oid)
        state = o.status if o is not None else "rejected"
        if state in ("filled", "released"):
            return replace(
                first, accepted=False, reason=Reason.ORDER_CLOSED, replayed=True, state=state
            )
        return replace(first, replayed=True, state=state)

    def reserve(self, oid: str, o: Order) -> Expected:
        self.expire_due()
        fp = fingerprint(o)
        if oid in self.first:
            if self.first[oid][0] == fp:
                return self._replay(oid)
            return reject(Reason.DUPLICATE_ORDER_ID)
        d, transient = self._decide(oid, o)
        d = replace(d, state="open" if d.accepted else "rejected")
        if not transient:
            self.first[oid] = (fp, d)
        return d

    def reserve_basket(self, basket_id: str, orders: list[Order]) -> BasketExpected:
        self.expire_due()
        legs = tuple((o.order_id, fingerprint(o)) for o in orders)
        dup_id = reject(Reason.DUPLICATE_ORDER_ID)
        # Only an order this very basket reserved may be named again in it; any
        # other id seen before is refused before any leg is decided.
        for i, (oid, fp) in enumerate(legs, start=1):
            if oid in self.first and (
                self.first[oid][0] != fp or self.basket_of.get(oid) != basket_id
            ):
                return BasketExpected(False, Reason.DUPLICATE_ORDER_ID, i, oid, ((oid, dup_id),))
        if all(oid in self.first for oid, _ in legs):
            replayed = tuple((oid, self._replay(oid)) for oid, _ in legs)
            for i, (oid, d) in enumerate(replayed, start=1):
                if d.reason is Reason.ORDER_CLOSED:
                    return BasketExpected(False, Reason.ORDER_CLOSED, i, oid, replayed[:i])
            return BasketExpected(True, Reason.OK, 0, None, replayed)
        saved = copy.deepcopy((self.agg, self.pos, self.orders, self.dups, self.messages))
        decided: list[tuple[str, Expected]] = []

        def undo(result: BasketExpected) -> BasketExpected:
            self.agg, self.pos, self.orders, self.dups, self.messages = saved
            return result

        for i, o in enumerate(orders, start=1):
            oid = o.order_id
            if oid in self.first:
                # Reserved by this basket before, now retried with other legs.
                decided.append((oid, dup_id))
                return undo(
                    BasketExpected(False, Reason.DUPLICATE_ORDER_ID, i, oid, tuple(decided))
                )
            d, _ = self._decide(oid, o)
            decided.append((oid, d))
            if not d.accepted:
                return undo(BasketExpected(False, d.reason, i, oid, tuple(decided)))
        totals: dict[str, int] = {}
        for oid, _ in legs:
            for scope in self.orders[oid].path:
                totals[scope] = totals.get(scope, 0) + self.orders[oid].res
        for oid, _ in legs:
            for scope in self.orders[oid].path:
                node = NODES[scope]
                lim = node.limits.get("max_basket_notional")
                if (
                    lim is not None
                    and totals[scope] > lim
                    and "max_basket_notional" not in node.shadow
                ):
                    return undo(
                        BasketExpected(
                            False,
                            Reason.BASKET_LIMIT,
                            0,
                            None,
                            tuple(decided),
                            scope,
                            lim,
                            0,
                            totals[scope],
                        )
                    )
        decided = [(oid, replace(d, state="open")) for oid, d in decided]
        for (oid, fp), (_, d) in zip(legs, decided, strict=True):
            self.first[oid] = (fp, d)
            self.basket_of[oid] = basket_id
        return BasketExpected(True, Reason.OK, 0, None, tuple(decided))

    def replace(self, oid: str, qty: int, price: Decimal, reduce_only: bool = False) -> Expected:
        self.expire_due()
        o = self.orders.get(oid)
        if o is not None and o.status == "open" and o.due is not None and o.due <= self.now:
            self._retire(oid)
        if o is None:
            return reject(Reason.UNKNOWN_ORDER)
        if o.status != "open":
            return reject(Reason.ORDER_CLOSED)
        if qty <= o.cum:
            return reject(Reason.INVALID_ORDER, used=o.cum, requested=qty)
        kill = self.killed(o.path)
        if kill:
            return reject(Reason.KILL_SWITCH, kill)
        grows = qty > o.qty
        for scope in (o.path[3], o.path[2]):
            state = self.state(scope)
            if state == "disabled":
                return reject(Reason.STRATEGY_DISABLED, scope)
            if state == "reduce_only" and grows:
                return reject(Reason.REDUCE_ONLY, scope, used=o.qty, requested=qty)
        bad = self.price_check(o.symbol, price)
        if bad:
            return bad
        for scope in o.path if reduce_only or o.ro else ():
            p = self.position(scope, o.symbol)
            if not reduces(p, o.side, qty - o.qty):
                return reject(Reason.REDUCE_ONLY, scope, used=p[6], requested=qty)
        reserved = notional(qty - o.cum, price, o.symbol)
        req = Req(
            qty,
            notional(qty, price, o.symbol),
            reserved - o.res,
            o.side,
            0,
            o.symbol,
            lambda _: grows,
        )
        d = self.evaluate(o.path, reserved, req)
        if d.accepted:
            self._bump(o, reserved - o.res, qty - o.qty)
            o.qty, o.price, o.res = qty, price, reserved
            o.ro = o.ro or reduce_only
            self.messages += 1
        return d

    def cancel(self, oid: str) -> Expected:
        o = self.orders.get(oid)
        if o is None:
            return reject(Reason.UNKNOWN_ORDER)
        if o.status != "open":
            return reject(Reason.ORDER_CLOSED)
        self.messages += 1
        return Expected(True, Reason.OK, notional=o.res)

    def release(self, oid: str) -> tuple[Reason, int, bool]:
        o = self.orders.get(oid)
        if o is None:
            return (Reason.UNKNOWN_ORDER, 0, False)
        if o.status != "open":
            return (Reason.OK, 0, True)
        released = o.res
        self._bump(o, -released, -o.leaves)
        for scope in o.path:
            self.agg[scope].n -= 1
        o.status, o.res = "released", 0
        return (Reason.OK, released, False)

    def fill(
        self, oid: str, fill_id: str, qty: int, price: Decimal, pnl: int | None
    ) -> tuple[Any, ...]:
        o = self.orders.get(oid)
        if o is None:
            return (Reason.UNKNOWN_ORDER, 0, 0, 0, 0, False, False, False)
        if fill_id in o.fills:
            return (Reason.OK, o.leaves, o.cum, o.res, 0, True, False, False)
        o.fills.add(fill_id)
        amount = notional(qty, price, o.symbol)
        open_ = o.status == "open"
        leaves_before = o.leaves
        o.cum += qty
        reserved = notional(o.leaves, o.price, o.symbol) if open_ else o.res
        self._bump(o, reserved - o.res, o.leaves - leaves_before if open_ else 0)
        for scope in o.path:
            a, p = self.agg[scope], self.position(scope, o.symbol)
            if o.ix == BUY:
                a.fb += amount
            else:
                a.fs += amount
            p[2 + o.ix] += amount
            p[6] += qty if o.ix == BUY else -qty
            a.pnl += pnl or 0
        if open_ and o.leaves == 0:
            for scope in o.path:
                self.agg[scope].n -= 1
            o.status = "filled"
        o.res = reserved
        o.fn += amount
        if open_ and o.status == "open" and o.tif in ("IOC", "FOK"):
            self._retire(oid)
            reserved = 0
        return (Reason.OK, o.leaves, o.cum, reserved, amount, False, o.cum > o.qty, False)

    def kill(self, scope: str) -> tuple[bool, list[str]]:
        already = scope in self.kills
        self.kills.add(scope)
        under = [
            oid
            for oid, o in self.orders.items()
            if o.status == "open" and (scope == "global" or scope in o.path)
        ]
        return already, sorted(under)

    def unkill(self, scope: str) -> bool:
        already = scope not in self.kills
        self.kills.discard(scope)
        return already

    def set_state(self, scope: str, state: str) -> tuple[str, bool, str]:
        """(previous runtime state, nothing changed, the policy's state)."""
        previous = self.states.get(scope, "enabled")
        if state == "enabled":
            self.states.pop(scope, None)
        else:
            self.states[scope] = state
        return previous, previous == state, NODES[scope].state

    # views

    def utilization(self) -> set[tuple[str, str, int, int, bool]]:
        rows = set()
        for scope, node in NODES.items():
            a = self.agg[scope]
            used = {
                "max_gross_notional": a.gross,
                "max_net_notional": a.net,
                "max_open_orders": a.n,
                "max_daily_loss": max(0, -a.pnl),
            }
            for name in UTIL_LIMITS:
                if name in node.limits:
                    rows.add((scope, name, used[name], node.limits[name], name in node.shadow))
        return rows

    def check_breaches(self) -> list[str]:
        """What ``ledger check`` must name: enforced limits that fills pushed past."""
        return sorted(
            f"{scope}: {name} used {used} > limit {lim}"
            for scope, name, used, lim, shadow in self.utilization()
            # A loss past its limit is what the limit is there to stop new orders on.
            if used > lim and not shadow and name != "max_daily_loss"
        )
