"""Baskets (``Ledger.reserve_basket``, reserve-n.lua): every leg reserved or none.

A failing leg, or the basket's total through a node over
``max_basket_notional``, must leave no partial reservation behind: node
aggregates, positions, the open-order index, order hashes and duplicate-guard
keys are compared with what they were before the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledger import Ledger, Order, Reason
from ledger.facade.results import BasketDecision
from tests.helpers import controls_doc, controls_node, exposure, load_controls, order


def leg_keys(lg: Ledger, legs: list[Order]) -> list[str]:
    """The order hash and duplicate-guard key of every leg."""
    keys = []
    for o in legs:
        valid = o.validate()
        keys += [lg.keys.order("F1", o.order_id), lg.keys.duplicate("F1", valid.duplicate_key)]
    return keys


def state(lg: Ledger, legs: list[Order]) -> dict[str, Any]:
    return {**exposure(lg), "legs": [lg.redis.exists(k) for k in leg_keys(lg, legs)]}


def rejected(lg: Ledger, legs: list[Order], basket_id: str = "bk1") -> BasketDecision:
    """Reserve the basket, expect a reject, and prove it left nothing behind."""
    before = state(lg, legs)
    b = lg.reserve_basket(legs, basket_id=basket_id)
    assert not b.accepted
    assert state(lg, legs) == before
    assert lg.check().ok
    return b


def reserved(lg: Ledger, legs: list[Order], basket_id: str = "bk1") -> BasketDecision:
    b = lg.reserve_basket(legs, basket_id=basket_id)
    assert (b.accepted, b.reason, b.leg) == (True, Reason.OK, 0), b
    assert [d.order_id for d in b.legs] == [o.order_id for o in legs]
    assert all(d.accepted for d in b.legs)
    assert lg.check().ok
    return b


def open_orders(lg: Ledger) -> set[str]:
    members = lg.redis.zrange(lg.keys.open_index("F1"), 0, -1)
    return {m.decode().rsplit("|", 1)[1] for m in members}


def basket_audit(lg: Ledger) -> list[dict[str, Any]]:
    return [r for r in lg.audit_tail(500) if r["op"] == "basket"]


# -- max_basket_notional -----------------------------------------------------------------


def test_basket_total_at_the_limit_passes_one_minor_unit_over_does_not(lg):
    doc = controls_doc()
    controls_node(doc, "firm:F1")["limits"]["max_basket_notional"] = "3000"
    load_controls(lg, doc)

    def legs(last_price: str) -> list[Order]:
        return [
            order("b1", qty="20", price="100"),
            order("b2", qty="19", price="50", symbol="ABC"),
            order("b3", qty="1", price=last_price, symbol="ABC"),
        ]

    over = rejected(lg, legs("50.01"))
    assert (over.reason, over.leg, over.failing_order) == (Reason.BASKET_LIMIT, 0, None)
    assert (over.scope, over.limit, over.used, over.requested) == ("firm:F1", 300_000, 0, 300_001)
    # Every leg passed on its own; the total decided.
    assert [d.reason for d in over.legs] == [Reason.OK] * 3
    assert open_orders(lg) == set()
    # Nothing was left behind, so the same ids are free for the corrected basket.
    ok = reserved(lg, legs("50"))
    assert sum(d.notional for d in ok.legs) == 300_000
    assert open_orders(lg) == {"b1", "b2", "b3"}
    # The limit is per basket, not per day: a second basket has its own total.
    reserved(lg, [order("c1", qty="30", price="100")], basket_id="bk2")


def test_basket_total_counts_only_the_legs_through_the_node(lg):
    doc = controls_doc()
    controls_node(doc, "desk:D1")["limits"]["max_basket_notional"] = "1500"
    load_controls(lg, doc)
    other_desk = {"trader": "T2", "strategy": "S2", "account": "A3"}
    reserved(
        lg,
        [
            order("b1", qty="10", price="100"),
            order("b2", qty="5", price="100", account="A2"),
            order("b3", qty="90", price="100", **other_desk),
        ],
    )
    b = rejected(
        lg,
        [
            order("c1", qty="10", price="100"),
            order("c2", qty="5", price="100.01", account="A2"),
            order("c3", qty="90", price="100", **other_desk),
        ],
        basket_id="bk2",
    )
    assert (b.reason, b.leg, b.scope, b.limit, b.requested) == (
        Reason.BASKET_LIMIT,
        0,
        "desk:D1",
        150_000,
        150_005,
    )


# -- a failing leg -----------------------------------------------------------------------


def gross(lg: Ledger) -> Callable[[], None]:
    """Desk D1 (gross 50000.00) already holds 30000.00: legs 1 and 2 together break it."""
    assert lg.reserve(order("pre", qty="300", account="A2")).accepted
    return lambda: lg.release("pre", "cancel confirmed")


def kill(lg: Ledger) -> Callable[[], None]:
    lg.kill("strategy:S2", by="ops-alice", reason="runaway")
    return lambda: lg.unkill("strategy:S2", by="ops-bob", reason="checked")


def collar(lg: Ledger) -> Callable[[], None]:
    lg.prices.set({"ABC": "48"}, by="feed")
    return lambda: lg.prices.set({"ABC": "50"}, by="feed")


@pytest.mark.parametrize(
    ("cause", "reason", "scope"),
    [
        (gross, Reason.GROSS_LIMIT, "desk:D1"),
        (kill, Reason.KILL_SWITCH, "strategy:S2"),
        (collar, Reason.PRICE_COLLAR, "tier:mid"),
    ],
)
def test_a_failing_middle_leg_leaves_nothing_behind(lg, cause, reason, scope):
    doc = controls_doc()
    controls_node(doc, "account:A1")["limits"]["duplicate_window_ms"] = 60_000
    load_controls(lg, doc)
    assert lg.reserve(order("earlier", qty="1", symbol="ABC", price="50")).accepted
    fix = cause(lg)
    legs = [
        order("b1", qty="10", price="100"),
        order("b2", qty="200", price="50", symbol="ABC", trader="T2", strategy="S2", account="A3")
        if cause is not gross
        else order("b2", qty="200", price="100", account="A2"),
        order("b3", qty="5", price="50", symbol="ABC"),
    ]
    b = rejected(lg, legs)
    assert (b.reason, b.leg, b.failing_order) == (reason, 2, "b2")
    assert [(d.order_id, d.reason) for d in b.legs] == [("b1", Reason.OK), ("b2", reason)]
    assert b.legs[1].scope == scope
    if cause is gross:
        # Leg 1 counts toward what leg 2 finds used.
        assert (b.legs[1].limit, b.legs[1].used, b.legs[1].requested) == (
            5_000_000,
            3_000_000 + 5_000 + 100_000,
            2_000_000,
        )
    (record,) = basket_audit(lg)
    assert (record["basket"], record["code"], record["leg"], record["order_id"]) == (
        "bk1",
        reason.value,
        2,
        "b2",
    )
    assert open_orders(lg) == {"earlier"} | ({"pre"} if cause is gross else set())

    fix()
    ok = reserved(lg, legs)
    assert not ok.replayed
    assert open_orders(lg) >= {"b1", "b2", "b3"}

    # The same basket again replays every leg and reserves nothing more.
    before = state(lg, legs)
    again = lg.reserve_basket(legs, basket_id="bk1")
    assert (again.accepted, again.reason, again.replayed) == (True, Reason.OK, True)
    assert [d.notional for d in again.legs] == [d.notional for d in ok.legs]
    assert state(lg, legs) == before
    assert lg.check().ok


def test_two_legs_that_fit_alone_break_the_desk_together(lg):
    load_controls(lg, controls_doc())
    legs = [order("b1", qty="200", price="100"), order("b2", qty="350", price="100", account="A2")]
    b = rejected(lg, legs)
    assert (b.reason, b.leg, b.failing_order) == (Reason.GROSS_LIMIT, 2, "b2")
    d = b.legs[1]
    assert (d.scope, d.limit, d.used, d.requested) == ("desk:D1", 5_000_000, 2_000_000, 3_500_000)
    # Each leg alone fits the desk.
    assert lg.reserve(order("s2", qty="350", price="100", account="A2")).accepted
    assert lg.release("s2", "cancel confirmed").ok
    assert lg.reserve(order("s1", qty="200", price="100")).accepted
    assert lg.check().ok


def test_legs_close_a_reduce_only_position_together_but_not_past_it(lg):
    load_controls(lg, controls_doc())
    assert lg.reserve(order("o1")).accepted
    assert lg.fill("o1", "f1", "10", "100").ok
    lg.states.set("account:A1", "reduce_only", by="ops-alice", reason="unwind")
    b = rejected(lg, [order("b1", qty="6", side="sell"), order("b2", qty="5", side="sell")])
    assert (b.reason, b.leg, b.legs[1].scope) == (Reason.REDUCE_ONLY, 2, "account:A1")
    reserved(lg, [order("b1", qty="6", side="sell"), order("b2", qty="4", side="sell")])


def test_a_leg_repeating_an_earlier_leg_is_a_duplicate_order(lg):
    doc = controls_doc()
    controls_node(doc, "account:A1")["limits"]["duplicate_window_ms"] = 60_000
    load_controls(lg, doc)
    b = rejected(lg, [order("b1"), order("b2", symbol="ABC", price="50"), order("b3")])
    assert (b.reason, b.leg, b.failing_order, b.legs[2].scope) == (
        Reason.DUPLICATE_ORDER,
        3,
        "b3",
        "account:A1",
    )
    # Nothing armed the guard: the first two legs alone pass.
    reserved(lg, [order("b1"), order("b2", symbol="ABC", price="50")])


def test_a_leg_id_of_an_accepted_basket_cannot_join_another(lg):
    load_controls(lg, controls_doc())
    reserved(lg, [order("b1"), order("b2", qty="11")])
    b = rejected(lg, [order("c1"), order("b2", qty="11")], basket_id="bk2")
    assert (b.reason, b.leg, b.failing_order) == (Reason.DUPLICATE_ORDER_ID, 2, "b2")
    # A leg id reused with other fields is refused the same way.
    b = rejected(lg, [order("c1"), order("b1", qty="12")], basket_id="bk3")
    assert (b.reason, b.leg, b.failing_order) == (Reason.DUPLICATE_ORDER_ID, 2, "b1")
    assert b.legs[-1].reason == Reason.DUPLICATE_ORDER_ID
    assert open_orders(lg) == {"b1", "b2"}


def test_a_basket_of_a_refused_order_id_is_not_accepted(lg):
    load_controls(lg, controls_doc())
    # A single order refused before; its reject is stored under its id.
    assert lg.reserve(order("x", qty="1001")).reason == Reason.MAX_ORDER_QTY
    assert lg.reserve(order("y")).accepted
    for legs in ([order("x", qty="1001")], [order("x", qty="1001"), order("y")]):
        before = state(lg, legs)
        b = lg.reserve_basket(legs, basket_id="bk1")
        # Nothing of leg x is reserved: the basket cannot be answered as accepted.
        assert not b.accepted and b.reason != Reason.OK
        assert state(lg, legs) == before
    assert open_orders(lg) == {"y"}
    assert lg.check().ok
