"""Stateful property test: random order flows against a plain-Python model of the ledger.

Hypothesis drives reserve, resubmit (same or changed fields), replace,
cancel_request, fill (fill ids repeat on purpose), release, kill and unkill
against a real server, and after every step compares each answer and every
node's aggregates and utilization with :class:`Model`. The model re-derives
everything from the policy document with Python ints and Decimal; it shares
no arithmetic with the ledger:

* notional = ceil(qty * price * 10**minor_units);
* checks in the order of lua/includes/checks.lua: MAX_ORDER_QTY,
  MAX_ORDER_NOTIONAL, OPEN_ORDERS_LIMIT, GROSS_LIMIT, NET_LIMIT, each over
  firm, desk, account, strategy, trader; a shadow limit is recorded and
  evaluation goes on;
* gross = ob + os + fb + fs; net = max(|F + ob|, |F - os|) with F = fb - fs;
  a net breach only rejects an order that increases the net;
* idempotency before kill switches, kill switches before entitlement,
  entitlement before limits; entitlement rejects are not remembered.

The policy is tight so that every reject kind happens often. Its one message
window is far too large to fill: message limits depend on wall-clock time.

``LEDGER_PROPERTY_EXAMPLES`` raises the number of examples for a deeper run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal, Inexact, localcontext
from typing import Any

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger import Decision, Ledger, Order, Reason, parse_policy
from ledger.views import aggregates

MINOR_UNITS = 2
FIRM = "F"
#: Far above anything a test run can send: the window code runs, never refuses.
HUGE_WINDOW = 1_000_000_000

DOC: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": MINOR_UNITS,
    "firms": [
        {
            "id": FIRM,
            "limits": {
                "max_gross_notional": "800",
                "max_net_notional": "350",
                "max_open_orders": 8,
                "messages": {"per_10s": HUGE_WINDOW},
            },
            "desks": [
                {
                    "id": "D1",
                    "limits": {
                        "max_gross_notional": "600",
                        "max_open_orders": 6,
                        "max_order_qty": 35,
                    },
                    "accounts": [
                        {"id": "A1", "limits": {"max_order_notional": "200", "max_order_qty": 30}},
                        {
                            "id": "A2",
                            "limits": {"max_order_notional": "250", "max_net_notional": "150"},
                        },
                    ],
                },
                {
                    "id": "D2",
                    "limits": {"max_gross_notional": "300", "max_net_notional": "200"},
                    "accounts": [
                        {"id": "A3", "limits": {"max_order_qty": 28, "max_open_orders": 3}}
                    ],
                },
            ],
        }
    ],
    "strategies": [
        {"id": "S1", "accounts": ["A1", "A2"], "limits": {"max_gross_notional": "400"}},
        {
            "id": "S2",
            "accounts": ["A2", "A3"],
            "limits": {
                "max_net_notional": "100",
                "max_open_orders": 4,
                "shadow": ["max_net_notional"],
            },
        },
    ],
    "traders": [
        {
            "id": "T1",
            "accounts": ["A1", "A2", "A3"],
            "strategies": ["S1", "S2"],
            "limits": {
                "max_gross_notional": "500",
                "max_order_notional": "300",
                "shadow": ["max_order_notional"],
            },
        },
        # T2 may not trade A1 nor S1; S1 may not trade A3.
        {
            "id": "T2",
            "accounts": ["A2", "A3"],
            "strategies": ["S2"],
            "limits": {"max_open_orders": 3, "max_order_qty": 20},
        },
    ],
}
POLICY = parse_policy(DOC, source="test_property")

#: Prices with 0 to 3 decimals: those with 3 make ceil() round up.
PRICES = ("0.5", "1", "2.25", "3.333", "4.999", "7.1", "9.875", "12.005")
ACCOUNTS, STRATEGIES, TRADERS = ("A1", "A2", "A3"), ("S1", "S2"), ("T1", "T2")
SIDES, SYMBOLS = ("buy", "sell"), ("XYZ", "ABC")
FILL_IDS = ("f1", "f2", "f3")
QTY = st.integers(1, 40)

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", "60")),
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# -- the model's own reading of the policy document -----------------------------------


def minor(amount: str) -> int:
    value = Decimal(amount) * 10**MINOR_UNITS
    assert value == value.to_integral_value(), amount
    return int(value)


def notional(qty: int, price: Decimal) -> int:
    with localcontext() as ctx:
        ctx.traps[Inexact] = True
        return int(math.ceil(Decimal(qty) * price * 10**MINOR_UNITS))


def net_of(ob: int, os_: int, fb: int, fs: int) -> int:
    f = fb - fs
    return max(abs(f + ob), abs(f - os_))


@dataclass(frozen=True)
class MNode:
    limits: dict[str, int]
    shadow: frozenset[str]
    accounts: frozenset[str] = frozenset()
    strategies: frozenset[str] = frozenset()


def _mnode(spec: dict[str, Any], **kw: Any) -> MNode:
    raw = spec.get("limits", {})
    limits = {}
    for name in ("max_order_qty", "max_open_orders"):
        if name in raw:
            limits[name] = int(raw[name])
    for name in ("max_order_notional", "max_gross_notional", "max_net_notional"):
        if name in raw:
            limits[name] = minor(raw[name])
    return MNode(limits, frozenset(raw.get("shadow", ())), **kw)


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


NODES, ROUTE = model_nodes(DOC)
ENTITLED = tuple(
    (a, s, t)
    for a in ACCOUNTS
    for s in STRATEGIES
    for t in TRADERS
    if a in NODES[f"strategy:{s}"].accounts
    and a in NODES[f"trader:{t}"].accounts
    and s in NODES[f"trader:{t}"].strategies
)
CHECK_ORDER = (
    "max_order_qty",
    "max_order_notional",
    "max_open_orders",
    "max_gross_notional",
    "max_net_notional",
)
UTIL_LIMITS = ("max_gross_notional", "max_net_notional", "max_open_orders")

# -- the model ---------------------------------------------------------------------------


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
        )


def reject(reason: Reason, scope: str | None = None, **kw: Any) -> Expected:
    return Expected(False, reason, scope, **kw)


@dataclass
class Agg:
    ob: int = 0
    os: int = 0
    fb: int = 0
    fs: int = 0
    n: int = 0

    @property
    def gross(self) -> int:
        return self.ob + self.os + self.fb + self.fs

    @property
    def net(self) -> int:
        return net_of(self.ob, self.os, self.fb, self.fs)

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.ob, self.os, self.fb, self.fs, self.n)


@dataclass
class MOrder:
    path: tuple[str, ...]
    side: str
    qty: int
    price: Decimal
    res: int
    status: str = "open"
    cum: int = 0
    fn: int = 0
    fills: set[str] = field(default_factory=set)


class Model:
    def __init__(self) -> None:
        self.agg: dict[str, Agg] = {scope: Agg() for scope in NODES}
        self.orders: dict[str, MOrder] = {}
        #: order id -> (fingerprint, first decision) for every remembered reserve.
        self.first: dict[str, tuple[tuple[Any, ...], Expected]] = {}
        self.kills: set[str] = set()
        self.messages = 0

    # helpers

    def _bump(self, path: Iterable[str], name: str, delta: int) -> None:
        for scope in path:
            a = self.agg[scope]
            setattr(a, name, getattr(a, name) + delta)

    def killed(self, path: tuple[str, ...]) -> str | None:
        if "global" in self.kills:
            return "global"
        return next((s for s in path if s in self.kills), None)

    def _hit(self, name: str, scope: str, lim: int, req: dict[str, Any]) -> Breach | None:
        a = self.agg[scope]
        if name == "max_order_qty" and req["qty"] > lim:
            return (Reason.MAX_ORDER_QTY, scope, lim, 0, req["qty"])
        if name == "max_order_notional" and req["order_notional"] > lim:
            return (Reason.MAX_ORDER_NOTIONAL, scope, lim, 0, req["order_notional"])
        if name == "max_open_orders" and req["opens"] > 0 and a.n + req["opens"] > lim:
            return (Reason.OPEN_ORDERS_LIMIT, scope, lim, a.n, req["opens"])
        if name == "max_gross_notional" and req["delta"] > 0 and a.gross + req["delta"] > lim:
            return (Reason.GROSS_LIMIT, scope, lim, a.gross, req["delta"])
        if name == "max_net_notional":
            before = a.net
            if req["side"] == "buy":
                after = net_of(a.ob + req["delta"], a.os, a.fb, a.fs)
            else:
                after = net_of(a.ob, a.os + req["delta"], a.fb, a.fs)
            if after > lim and after > before:
                return (Reason.NET_LIMIT, scope, lim, before, after - before)
        return None

    def evaluate(self, path: tuple[str, ...], notional_: int, **req: Any) -> Expected:
        shadow: list[Breach] = []
        for name in CHECK_ORDER:
            for scope in path:
                node = NODES[scope]
                lim = node.limits.get(name)
                if lim is None:
                    continue
                hit = self._hit(name, scope, lim, req)
                if hit is None:
                    continue
                if name in node.shadow:
                    shadow.append(hit)
                    continue
                return Expected(
                    False, hit[0], hit[1], hit[2], hit[3], hit[4], notional_, shadow=tuple(shadow)
                )
        return Expected(True, Reason.OK, notional=notional_, shadow=tuple(shadow))

    # operations

    def reserve(self, oid: str, o: Order) -> Expected:
        price = Decimal(str(o.price))
        fp = (o.trader, o.strategy, o.account, o.symbol, o.side, int(o.qty), price)
        if oid in self.first:
            first_fp, first = self.first[oid]
            if first_fp == fp:
                return replace(first, replayed=True)
            return reject(Reason.DUPLICATE_ORDER_ID)
        desk, firm = ROUTE[o.account]
        path = (
            f"firm:{firm}",
            f"desk:{desk}",
            f"account:{o.account}",
            f"strategy:{o.strategy}",
            f"trader:{o.trader}",
        )
        kill = self.killed(path)
        if kill:
            d = reject(Reason.KILL_SWITCH, kill)
            self.first[oid] = (fp, d)
            return d
        strategy, trader = NODES[path[3]], NODES[path[4]]
        if o.account not in strategy.accounts:
            return reject(Reason.NOT_ENTITLED, path[3])
        if o.account not in trader.accounts or o.strategy not in trader.strategies:
            return reject(Reason.NOT_ENTITLED, path[4])
        qty = int(o.qty)
        amount = notional(qty, price)
        d = self.evaluate(
            path, amount, qty=qty, order_notional=amount, delta=amount, side=o.side, opens=1
        )
        self.first[oid] = (fp, d)
        if d.accepted:
            self._bump(path, "ob" if o.side == "buy" else "os", amount)
            self._bump(path, "n", 1)
            self.orders[oid] = MOrder(path, o.side, qty, price, amount)
            self.messages += 1
        return d

    def replace(self, oid: str, qty: int, price: Decimal) -> Expected:
        o = self.orders.get(oid)
        if o is None:
            return reject(Reason.UNKNOWN_ORDER)
        if o.status != "open":
            return reject(Reason.ORDER_CLOSED)
        if qty <= o.cum:
            return reject(Reason.INVALID_ORDER, used=o.cum, requested=qty)
        kill = self.killed(o.path)
        if kill:
            return reject(Reason.KILL_SWITCH, kill)
        reserved = notional(qty - o.cum, price)
        d = self.evaluate(
            o.path,
            reserved,
            qty=qty,
            order_notional=notional(qty, price),
            delta=reserved - o.res,
            side=o.side,
            opens=0,
        )
        if d.accepted:
            self._bump(o.path, "ob" if o.side == "buy" else "os", reserved - o.res)
            o.qty, o.price, o.res = qty, price, reserved
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
        self._bump(o.path, "ob" if o.side == "buy" else "os", -released)
        self._bump(o.path, "n", -1)
        o.status, o.res = "released", 0
        return (Reason.OK, released, False)

    def fill(self, oid: str, fill_id: str, qty: int, price: Decimal) -> tuple[Any, ...]:
        o = self.orders.get(oid)
        if o is None:
            return (Reason.UNKNOWN_ORDER, 0, 0, 0, 0, False, False)
        if fill_id in o.fills:
            return (Reason.OK, max(o.qty - o.cum, 0), o.cum, o.res, 0, True, False)
        o.fills.add(fill_id)
        amount = notional(qty, price)
        o.cum += qty
        leaves = max(o.qty - o.cum, 0)
        reserved = o.res
        closes = o.status == "open" and leaves == 0
        if o.status == "open":
            reserved = notional(leaves, o.price)
        self._bump(o.path, "ob" if o.side == "buy" else "os", reserved - o.res)
        self._bump(o.path, "fb" if o.side == "buy" else "fs", amount)
        if closes:
            self._bump(o.path, "n", -1)
            o.status = "filled"
        o.res = reserved
        o.fn += amount
        return (Reason.OK, leaves, o.cum, reserved, amount, False, o.cum > o.qty)

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

    # views

    def utilization(self) -> set[tuple[str, str, int, int, bool]]:
        rows = set()
        for scope, node in NODES.items():
            a = self.agg[scope]
            used = {
                "max_gross_notional": a.gross,
                "max_net_notional": a.net,
                "max_open_orders": a.n,
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
            if used > lim and not shadow
        )


# -- the state machine -------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """Drives the ledger and the model side by side; ``client`` is set per test run."""

    client: redis.Redis

    def __init__(self) -> None:
        super().__init__()
        self.client.flushall()
        self.lg = Ledger(self.client, actor="property")
        self.lg.load_policy(POLICY, by="test", source="test_property")
        self.model = Model()
        self.sent: dict[str, Order] = {}
        self.seq = 0

    # choosing ids

    def _pick(self, data: st.DataObject) -> str:
        opened = sorted(oid for oid, o in self.model.orders.items() if o.status == "open")
        anything = sorted(self.sent) + ["ghost"]
        choices = st.sampled_from(anything)
        if opened:
            choices = st.one_of(st.sampled_from(opened), choices)
        return data.draw(choices, label="order_id")

    def _reserve(self, oid: str, order: Order) -> None:
        self.sent[oid] = order
        want = self.model.reserve(oid, order)
        got = Expected.of(self.lg.reserve(order))
        assert got == want, f"reserve {order}"

    # rules

    @initialize(
        orders=st.lists(
            st.tuples(
                st.sampled_from(ENTITLED), st.sampled_from(SIDES), QTY, st.sampled_from(PRICES)
            ),
            min_size=1,
            max_size=6,
        )
    )
    def seed(self, orders: list[tuple[tuple[str, str, str], str, int, str]]) -> None:
        """Every example starts with a few orders, so later steps have something to act on."""
        for combo, side, qty, price in orders:
            self._new_order(combo, side, qty, price)

    def _new_order(self, combo: tuple[str, str, str], side: str, qty: int, price: str) -> None:
        self.seq += 1
        account, strategy, trader = combo
        oid = f"o{self.seq}"
        self._reserve(oid, Order(oid, trader, strategy, account, "XYZ", side, str(qty), price))

    @rule(
        combo=st.tuples(
            st.sampled_from(ACCOUNTS), st.sampled_from(STRATEGIES), st.sampled_from(TRADERS)
        ),
        side=st.sampled_from(SIDES),
        qty=QTY,
        price=st.sampled_from(PRICES),
    )
    def reserve(self, combo: tuple[str, str, str], side: str, qty: int, price: str) -> None:
        self._new_order(combo, side, qty, price)

    # A second reserve rule, of entitled combinations only: new orders are the
    # most frequent step, as on a real gateway.
    @rule(
        combo=st.sampled_from(ENTITLED),
        side=st.sampled_from(SIDES),
        qty=QTY,
        price=st.sampled_from(PRICES),
    )
    def reserve_entitled(
        self, combo: tuple[str, str, str], side: str, qty: int, price: str
    ) -> None:
        self._new_order(combo, side, qty, price)

    @precondition(lambda self: self.sent)
    @rule(
        data=st.data(),
        change=st.sampled_from(
            ("same", "same-spelled-differently", "qty", "side", "symbol", "price", "account")
        ),
    )
    def resubmit(self, data: st.DataObject, change: str) -> None:
        oid = data.draw(st.sampled_from(sorted(self.sent)), label="order_id")
        o = self.sent[oid]
        if change == "same-spelled-differently":
            # The same price written with a trailing zero is the same order.
            spelled = f"{o.price}0" if "." in str(o.price) else f"{o.price}.00"
            o = replace(o, price=spelled)
        elif change == "qty":
            o = replace(o, qty=str(int(o.qty) + 1))
        elif change == "side":
            o = replace(o, side="sell" if o.side == "buy" else "buy")
        elif change == "symbol":
            o = replace(o, symbol="ABC" if o.symbol == "XYZ" else "XYZ")
        elif change == "price":
            o = replace(o, price=str(Decimal(str(o.price)) + Decimal("0.01")))
        elif change == "account":
            o = replace(
                o,
                account=data.draw(
                    st.sampled_from([a for a in ACCOUNTS if a != o.account]), label="account"
                ),
            )
        if oid not in self.model.first:
            self.sent[oid] = o  # nothing was remembered: these fields are now the order's
        want = self.model.reserve(oid, o)
        got = Expected.of(self.lg.reserve(o))
        assert got == want, f"resubmit ({change}) {o}"

    @rule(data=st.data(), qty=QTY, price=st.sampled_from(PRICES))
    def replace_order(self, data: st.DataObject, qty: int, price: str) -> None:
        oid = self._pick(data)
        want = self.model.replace(oid, qty, Decimal(price))
        got = Expected.of(self.lg.replace(oid, str(qty), price))
        assert got == want, f"replace {oid} qty={qty} price={price}"

    @rule(data=st.data())
    def cancel_request(self, data: st.DataObject) -> None:
        oid = self._pick(data)
        want = self.model.cancel(oid)
        got = Expected.of(self.lg.cancel_request(oid))
        assert got == want, f"cancel_request {oid}"

    @rule(data=st.data(), fill_id=st.sampled_from(FILL_IDS), price=st.sampled_from(PRICES))
    def fill(self, data: st.DataObject, fill_id: str, price: str) -> None:
        oid = self._pick(data)
        o = self.model.orders.get(oid)
        leaves = max(o.qty - o.cum, 1) if o else 10
        # Mostly within the leaves; now and then beyond (an overfill is recorded too).
        qty = data.draw(st.one_of(st.integers(1, leaves), st.integers(1, leaves + 5)), label="qty")
        want = self.model.fill(oid, fill_id, qty, Decimal(price))
        r = self.lg.fill(oid, fill_id, str(qty), price)
        got = (r.reason, r.leaves, r.cum_qty, r.reserved, r.fill_notional, r.duplicate, r.overfill)
        assert got == want, f"fill {oid} {fill_id} qty={qty} price={price}"

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        oid = self._pick(data)
        want = self.model.release(oid)
        r = self.lg.release(oid, "cancelled")
        assert (r.reason, r.released, r.already_closed) == want, f"release {oid}"

    # At most two switches at once: with more, nearly every order is a KILL_SWITCH.
    @precondition(lambda self: len(self.model.kills) < 2)
    @rule(scope=st.sampled_from(("global", *NODES)))
    def kill(self, scope: str) -> None:
        already, under = self.model.kill(scope)
        r = self.lg.kill(scope, by="test", reason="property")
        assert (r.already, sorted(r.open_orders)) == (already, under), f"kill {scope}"

    @precondition(lambda self: self.model.kills)
    @rule(data=st.data())
    def unkill(self, data: st.DataObject) -> None:
        scope = data.draw(st.sampled_from(sorted(self.model.kills) + ["desk:D2"]), label="scope")
        already = self.model.unkill(scope)
        r = self.lg.unkill(scope, by="test", reason="property")
        assert r.already == already and r.open_orders == (), f"unkill {scope}"

    # invariants

    @invariant()
    def aggregates_match(self) -> None:
        got = aggregates(self.client, self.lg.keys, FIRM)
        assert set(got) <= set(NODES), f"aggregates of unknown scopes: {set(got) - set(NODES)}"
        for scope, want in self.model.agg.items():
            have = got.get(scope)
            have_t = (have.ob, have.os, have.fb, have.fs, have.n) if have else (0, 0, 0, 0, 0)
            assert have_t == want.as_tuple(), f"{scope}: ledger {have_t} != model {want}"

    @invariant()
    def utilization_matches(self) -> None:
        rows = self.lg.utilization()
        notional_rows = {
            (r.scope, r.limit_name, r.used, r.limit, r.shadow)
            for r in rows
            if not r.limit_name.startswith("messages")
        }
        assert notional_rows == self.model.utilization()
        (window,) = [r for r in rows if r.limit_name.startswith("messages")]
        assert (window.scope, window.limit_name, window.limit) == (
            f"firm:{FIRM}",
            "messages.all.per_10s",
            HUGE_WINDOW,
        )
        # Only accepted messages are counted; the window may have let older ones go.
        assert 0 <= window.used <= self.model.messages

    def teardown(self) -> None:
        report = self.lg.check()
        assert report.orders == len(self.model.orders)
        # Only a fill beyond what was reserved (a higher price, an overfill, or
        # the cent that ceil() adds to each part) can take a node past a limit.
        expected = self.model.check_breaches()
        assert report.breaches == expected
        assert report.ok == (not expected)


def test_ledger_matches_model(redis_client: redis.Redis) -> None:
    class Machine(LedgerMachine):
        client = redis_client

    run_state_machine_as_test(Machine, settings=PROPERTY_SETTINGS)


def test_model_reads_the_policy_as_the_ledger_does() -> None:
    """The model's own parse of the document agrees with the ledger's on every limit."""
    for scope, node in NODES.items():
        ledger_node = POLICY.node(scope)
        assert ledger_node is not None
        assert dict(ledger_node.limits.items()) == node.limits, scope
        assert ledger_node.limits.shadow == node.shadow, scope
    assert len(ENTITLED) == 6 and ("A3", "S1", "T1") not in ENTITLED
