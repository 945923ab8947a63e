"""Stateful property test: random order flows against a plain-Python model of the ledger.

Hypothesis drives reserve (new orders, resubmits with the same or changed
fields, the same fields under a new id), baskets (new legs, legs seen before,
retries), replace, cancel_request, fill (fill ids repeat on purpose; some carry
a realized P&L), release, kill and unkill, and runtime states (disabled,
reduce-only, enabled again) against a real server. After every step it
compares each answer, every node's aggregates and daily P&L, every node's
position in every symbol, and the utilization view with
:class:`tests.model.Model`, whose docstring lists the rules it re-derives.

The policy is tight so that every reject kind happens often. Message windows,
the cancel-to-new ratio and the fill throttle depend on wall-clock time: they
are set far too large to fire. The server runs on the test clock
(tests/fakeclock), frozen and moved by a rule, so that orders with a time in
force (GTD, IOC, FOK, GTC) come due at a millisecond the model knows.

``LEDGER_PROPERTY_EXAMPLES`` raises the number of examples for a deeper run.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

import msgpack
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

from ledger import Ledger, Order, parse_policy
from ledger.policy.lifecycle import format_ms
from tests.fakeclock.plugin import Clock
from tests.model import (
    ACCOUNTS,
    ACTIVE,
    DOC,
    ENTITLED,
    FIRM,
    HUGE,
    MINOR_UNITS,
    NODES,
    PRICES,
    REFERENCE,
    STATE_SCOPES,
    STRATEGIES,
    TIER_OF,
    TRADED,
    TRADERS,
    BasketExpected,
    Expected,
    Model,
    minor,
)

POLICY = parse_policy(DOC, source="test_property")
#: Where the test clock starts each example: now, so that ROLLS_AT stays half a day away.
START_MS = time.time_ns() // 1_000_000
#: Time in force of the timed orders; GTD's expire time is drawn from GTD_IN_MS.
TIMED = st.sampled_from(("GTD", "GTD", "IOC", "FOK", "GTC"))
GTD_IN_MS = st.sampled_from((1, 2, 500, 3_000, 10_000))

SIDES = ("buy", "sell")
FILL_IDS = ("f1", "f2", "f3")
#: Mostly modest quantities; up to 40 reaches every qty cap.
QTY = st.one_of(st.integers(1, 15), st.integers(1, 40))
#: Realized P&L of a fill, major units; None for a fill that carries none.
PNL = st.sampled_from((None, "-9.5", "-20", "-35", "-0.01", "6", "12.5"))


#: The prices of each symbol an order may have (stale or unknown symbols: none).
INSIDE = {
    s: [p for p in prices if s in TIER_OF and Model.price_check(s, Decimal(p)) is None]
    for s, prices in PRICES.items()
}


def priced(symbols: tuple[str, ...], inside: int = 1) -> st.SearchStrategy[tuple[str, str]]:
    """A symbol and one of its prices: inside the collar ``inside`` times as
    often as any of its prices (on, beyond or inside)."""
    return st.sampled_from(symbols).flatmap(
        lambda s: st.tuples(
            st.just(s),
            st.one_of(
                *[st.sampled_from(INSIDE[s] or PRICES[s])] * inside, st.sampled_from(PRICES[s])
            ),
        )
    )


PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", "60")),
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
ZERO_POSITION = [0] * 7


class LedgerMachine(RuleBasedStateMachine):
    """Drives the ledger and the model side by side; ``client`` is set per test run."""

    client: redis.Redis
    clock: Clock

    def __init__(self) -> None:
        super().__init__()
        self.clock.set_ms(START_MS)
        self.client.flushall()
        self.lg = Ledger(self.client, actor="property")
        self.lg.load_policy(POLICY, by="test", source="test_property")
        self.lg.prices.set(REFERENCE, by="feed")
        self.model = Model()
        self.model.now = START_MS
        self.sent: dict[str, Order] = {}
        self.baskets: list[tuple[str, list[Order]]] = []
        self.seq = 0

    # choosing ids

    def _pick(self, data: st.DataObject) -> str:
        """Mostly an open order; else any id sent so far, or one never sent."""
        opened = sorted(oid for oid, o in self.model.orders.items() if o.status == "open")
        anything = sorted(self.sent) + ["ghost"]
        if opened and data.draw(st.integers(0, 3), label="open") > 0:
            return data.draw(st.sampled_from(opened), label="order_id")
        return data.draw(st.sampled_from(anything), label="order_id")

    def _new_id(self) -> str:
        self.seq += 1
        return f"o{self.seq}"

    def _reserve(self, order: Order) -> None:
        self.sent[order.order_id] = order
        want = self.model.reserve(order.order_id, order)
        got = Expected.of(self.lg.reserve(order))
        assert got == want, f"reserve {order}"

    def _order(
        self,
        combo: tuple[str, str, str],
        side: str,
        qty: int,
        sym_price: tuple[str, str],
        reduce_only: bool = False,
    ) -> Order:
        account, strategy, trader = combo
        symbol, price = sym_price
        return Order(
            self._new_id(),
            trader,
            strategy,
            account,
            symbol,
            side,
            str(qty),
            price,
            reduce_only=reduce_only,
        )

    # rules

    @initialize(
        orders=st.lists(
            st.tuples(st.sampled_from(ACTIVE), st.sampled_from(SIDES), QTY, priced(TRADED)),
            min_size=1,
            max_size=6,
        )
    )
    def seed(self, orders: list[tuple[tuple[str, str, str], str, int, tuple[str, str]]]) -> None:
        """Every example starts with a few orders, so later steps have something to act on."""
        for combo, side, qty, sym_price in orders:
            self._reserve(self._order(combo, side, qty, sym_price))

    # Any combination, and now and then a symbol in no tier or one without a price.
    @rule(
        combo=st.one_of(
            st.sampled_from(ENTITLED),
            st.tuples(
                st.sampled_from(ACCOUNTS), st.sampled_from(STRATEGIES), st.sampled_from(TRADERS)
            ),
        ),
        side=st.sampled_from(SIDES),
        qty=QTY,
        sym_price=priced((*TRADED, "NOPX", "ZZZ")),
    )
    def reserve(
        self, combo: tuple[str, str, str], side: str, qty: int, sym_price: tuple[str, str]
    ) -> None:
        self._reserve(self._order(combo, side, qty, sym_price))

    # Orders with a time in force other than DAY (which never comes due within a run).
    @rule(
        combo=st.sampled_from(ACTIVE),
        side=st.sampled_from(SIDES),
        qty=QTY,
        sym_price=priced(TRADED),
        tif=TIMED,
        expire_in=GTD_IN_MS,
    )
    def reserve_timed(
        self,
        combo: tuple[str, str, str],
        side: str,
        qty: int,
        sym_price: tuple[str, str],
        tif: str,
        expire_in: int,
    ) -> None:
        o = self._order(combo, side, qty, sym_price)
        expire = format_ms(self.model.now + expire_in) if tif == "GTD" else None
        self._reserve(replace(o, time_in_force=tif, expire_time=expire))

    @rule(ms=st.sampled_from((1, 2, 499, 1_000, 5_000)))
    def advance_time(self, ms: int) -> None:
        self.model.now += ms
        self.clock.set_ms(self.model.now)

    @rule()
    def sweep(self) -> None:
        want = self.model.expire_due(None)
        assert self.lg.sweep() == {FIRM: want}

    # A second reserve rule, of combinations that can trade: new orders are the
    # most frequent step, as on a real gateway.
    @rule(
        combo=st.sampled_from(ACTIVE),
        side=st.sampled_from(SIDES),
        qty=QTY,
        sym_price=priced(TRADED),
    )
    def reserve_active(
        self, combo: tuple[str, str, str], side: str, qty: int, sym_price: tuple[str, str]
    ) -> None:
        self._reserve(self._order(combo, side, qty, sym_price))

    # The fields of an earlier order under a new id, through any entitled path
    # of its account: what the duplicate-order guard is for.
    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def reserve_again(self, data: st.DataObject) -> None:
        o = self.sent[data.draw(st.sampled_from(sorted(self.sent)), label="like")]
        paths = [c for c in ENTITLED if c[0] == o.account] or [(o.account, o.strategy, o.trader)]
        _, strategy, trader = data.draw(st.sampled_from(paths), label="path")
        self._reserve(replace(o, order_id=self._new_id(), strategy=strategy, trader=trader))

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
            others = [s for s in TRADED if s != o.symbol]
            o = replace(o, symbol=data.draw(st.sampled_from(others), label="symbol"))
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

    # Mostly new legs; now and then one leg is an id seen before (as sent, or
    # changed), or a leg repeats another's fields.
    @rule(
        data=st.data(),
        legs=st.lists(
            st.tuples(
                st.sampled_from(ACTIVE),
                st.sampled_from(SIDES),
                st.integers(5, 25),
                priced(TRADED, 3),
            ),
            min_size=1,
            max_size=3,
        ),
        seen=st.sampled_from(("none", "none", "none", "seen", "seen-changed", "twin")),
    )
    def basket(
        self,
        data: st.DataObject,
        legs: list[tuple[tuple[str, str, str], str, int, tuple[str, str]]],
        seen: str,
    ) -> None:
        orders = [self._order(*leg) for leg in legs]
        if seen == "twin":
            # The first leg's fields again under a new id: the duplicate guard
            # must see what the earlier leg of the same basket would leave.
            orders.append(replace(orders[0], order_id=self._new_id()))
        elif seen != "none" and self.sent:
            at = data.draw(st.integers(0, len(orders) - 1), label="at")
            old = self.sent[data.draw(st.sampled_from(sorted(self.sent)), label="seen")]
            if seen == "seen-changed":
                old = replace(old, qty=str(int(old.qty) + 1))
            orders[at] = old
        self.seq += 1
        self._basket(f"b{self.seq}", orders)

    # A retry under the same basket id: as it was, with a leg less, or with one more.
    @precondition(lambda self: self.baskets)
    @rule(
        data=st.data(),
        change=st.sampled_from(("same", "same", "drop-last", "add-leg")),
        extra=st.tuples(st.sampled_from(ACTIVE), st.sampled_from(SIDES), QTY, priced(TRADED)),
    )
    def basket_retry(
        self,
        data: st.DataObject,
        change: str,
        extra: tuple[tuple[str, str, str], str, int, tuple[str, str]],
    ) -> None:
        basket_id, orders = data.draw(st.sampled_from(self.baskets), label="basket")
        if change == "drop-last" and len(orders) > 1:
            orders = orders[:-1]
        elif change == "add-leg":
            orders = [*orders, self._order(*extra)]
        self._basket(basket_id, orders)

    def _basket(self, basket_id: str, orders: list[Order]) -> None:
        for o in orders:
            if o.order_id not in self.model.first:
                self.sent[o.order_id] = o
        self.baskets.append((basket_id, orders))
        want = self.model.reserve_basket(basket_id, orders)
        got = BasketExpected.of(self.lg.reserve_basket(orders, basket_id=basket_id))
        assert got == want, f"basket {basket_id} {orders}"

    # Orders flagged reduce-only: most are refused unless a position is there to shrink.
    @rule(
        combo=st.sampled_from(ACTIVE),
        side=st.sampled_from(SIDES),
        qty=QTY,
        sym_price=priced(TRADED),
    )
    def reserve_reduce_only(
        self, combo: tuple[str, str, str], side: str, qty: int, sym_price: tuple[str, str]
    ) -> None:
        self._reserve(self._order(combo, side, qty, sym_price, reduce_only=True))

    @rule(data=st.data(), qty=QTY, reduce_only=st.sampled_from((False, False, False, True)))
    def replace_order(self, data: st.DataObject, qty: int, reduce_only: bool) -> None:
        oid = self._pick(data)
        o = self.model.orders.get(oid)
        price = data.draw(st.sampled_from(PRICES[o.symbol if o else "XYZ"]), label="price")
        want = self.model.replace(oid, qty, Decimal(price), reduce_only)
        got = Expected.of(self.lg.replace(oid, str(qty), price, reduce_only=reduce_only))
        assert got == want, f"replace {oid} qty={qty} price={price} reduce_only={reduce_only}"

    @rule(data=st.data())
    def cancel_request(self, data: st.DataObject) -> None:
        oid = self._pick(data)
        want = self.model.cancel(oid)
        got = Expected.of(self.lg.cancel_request(oid))
        assert got == want, f"cancel_request {oid}"

    @rule(data=st.data(), fill_id=st.sampled_from(FILL_IDS), pnl=PNL)
    def fill(self, data: st.DataObject, fill_id: str, pnl: str | None) -> None:
        self._fill(data, self._pick(data), fill_id, pnl)

    # Fills of open orders only, as a second rule: executions are frequent.
    @precondition(lambda self: any(o.status == "open" for o in self.model.orders.values()))
    @rule(data=st.data(), fill_id=st.sampled_from(FILL_IDS), pnl=PNL)
    def fill_open(self, data: st.DataObject, fill_id: str, pnl: str | None) -> None:
        opened = sorted(oid for oid, o in self.model.orders.items() if o.status == "open")
        self._fill(data, data.draw(st.sampled_from(opened), label="order_id"), fill_id, pnl)

    def _fill(self, data: st.DataObject, oid: str, fill_id: str, pnl: str | None) -> None:
        o = self.model.orders.get(oid)
        leaves = max(o.qty - o.cum, 1) if o else 10
        # Mostly within the leaves; now and then beyond (an overfill is recorded too).
        qty = data.draw(st.one_of(st.integers(1, leaves), st.integers(1, leaves + 5)), label="qty")
        price = data.draw(st.sampled_from(PRICES[o.symbol if o else "XYZ"]), label="price")
        pnl_minor = None if pnl is None else -minor(pnl[1:]) if pnl[0] == "-" else minor(pnl)
        want = self.model.fill(oid, fill_id, qty, Decimal(price), pnl_minor)
        r = self.lg.fill(oid, fill_id, str(qty), price, pnl=pnl)
        got = (
            r.reason,
            r.leaves,
            r.cum_qty,
            r.reserved,
            r.fill_notional,
            r.duplicate,
            r.overfill,
            r.disabled_strategy,
        )
        assert got == want, f"fill {oid} {fill_id} qty={qty} price={price} pnl={pnl}"

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        oid = self._pick(data)
        want = self.model.release(oid)
        r = self.lg.release(oid, "cancelled")
        assert (r.reason, r.released, r.already_closed) == want, f"release {oid}"

    # One switch at a time: with more, nearly every order is a KILL_SWITCH.
    @precondition(lambda self: not self.model.kills)
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

    # One runtime state at a time: with more, nearly every order is refused.
    @rule(data=st.data(), state=st.sampled_from(("enabled", "enabled", "disabled", "reduce_only")))
    def set_state(self, data: st.DataObject, state: str) -> None:
        scopes = sorted(self.model.states) or STATE_SCOPES
        scope = data.draw(st.sampled_from(scopes), label="scope")
        want = self.model.set_state(scope, state)
        r = self.lg.states.set(scope, state, by="ops", reason="property")
        assert (r.previous, r.already, r.policy_state) == want, f"set_state {scope} {state}"

    def _hash(self, key: str) -> dict[str, Any]:
        """A msgpack-valued hash of the firm, decoded."""
        raw = cast("dict[bytes, bytes]", self.client.hgetall(key))
        return {
            k.decode(): msgpack.unpackb(v, raw=False, strict_map_key=False) for k, v in raw.items()
        }

    # invariants

    @invariant()
    def aggregates_match(self) -> None:
        got = self._hash(self.lg.keys.agg(FIRM))
        assert set(got) <= set(NODES), f"aggregates of unknown scopes: {set(got) - set(NODES)}"
        for scope, want in self.model.agg.items():
            values = got.get(scope, [0] * 5)
            assert isinstance(values, list), f"{scope}: node state is not an array: {values}"
            # [7] is the P&L of the day in [6]; the day does not roll within a run.
            have = (*values[:5], values[7] if len(values) > 7 else 0)
            assert have == want.as_tuple(), f"{scope}: ledger {have} != model {want}"

    @invariant()
    def positions_match(self) -> None:
        got = self._hash(self.lg.keys.positions(FIRM))
        for name in set(got) | set(self.model.pos):
            have, want = got.get(name, ZERO_POSITION), self.model.pos.get(name, ZERO_POSITION)
            assert have == want, f"position {name}: ledger {have} != model {want}"

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
            HUGE,
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
        prefix = self.lg.keys.duplicate(FIRM, "")
        dups = {k.decode()[len(prefix) :] for k in self.client.scan_iter(match=prefix + "*")}
        assert dups == self.model.dups


def test_ledger_matches_model(clock: Clock) -> None:
    class Machine(LedgerMachine):
        pass

    Machine.client = clock.redis
    Machine.clock = clock

    run_state_machine_as_test(Machine, settings=PROPERTY_SETTINGS)


def test_model_reads_the_policy_as_the_ledger_does() -> None:
    """The model's own parse of the document agrees with the ledger's."""
    for scope, node in NODES.items():
        ledger_node = POLICY.node(scope)
        assert ledger_node is not None
        assert dict(ledger_node.limits.items()) == node.limits, scope
        assert ledger_node.limits.shadow == node.shadow, scope
        assert ledger_node.state == node.state, scope
        assert ledger_node.symbols == node.symbols, scope
    tiers = POLICY.controls.tiers
    for symbol, tier in TIER_OF.items():
        theirs = POLICY.controls.tier_of(symbol)
        assert theirs is not None and theirs.name == tier.name, symbol
        assert (theirs.price_collar_bps, theirs.max_order_qty, theirs.max_order_notional) == (
            tier.collar_bps,
            tier.max_order_qty,
            tier.max_order_notional,
        )
    assert set(TIER_OF) == {s for t in tiers.values() for s in t.symbols}
    assert POLICY.minor_units == MINOR_UNITS
    assert len(ENTITLED) == 9 and len(ACTIVE) == 6 and ("A3", "S1", "T1") not in ENTITLED
