"""A retry of an order says what the order is now (issue 9, item 9).

A replay of an order since released or filled must never read as an
acceptance: it is ORDER_CLOSED with the order's ``state``, and nothing is
reserved again. A replay of a still-open order is an acceptance, ``replayed``
and ``state`` open.
"""

from __future__ import annotations

from ledger import Ledger, Reason
from tests.helpers import agg, order


def test_a_retry_after_release_is_order_closed_and_reserves_nothing(lg: Ledger) -> None:
    first = lg.reserve(order("r1"))
    assert (first.accepted, first.state, first.replayed) == (True, "open", False)
    assert lg.release("r1", reason="expired").ok
    again = lg.reserve(order("r1"))
    assert again.replayed is True
    assert (again.accepted, again.reason, again.state) == (False, Reason.ORDER_CLOSED, "released")
    assert "released (expired)" in again.message
    assert again.to_dict()["decision"] == "rejected" and again.to_dict()["state"] == "released"
    assert agg(lg, "desk:D1").gross == 0 and agg(lg, "desk:D1").n == 0
    assert lg.check().ok


def test_a_retry_after_a_full_fill_is_order_closed_with_state_filled(lg: Ledger) -> None:
    assert lg.reserve(order("r2", qty="10")).accepted
    assert lg.fill("r2", fill_id="f1", qty="10", price="100").ok
    again = lg.reserve(order("r2", qty="10"))
    assert (again.accepted, again.reason, again.state, again.replayed) == (
        False,
        Reason.ORDER_CLOSED,
        "filled",
        True,
    )
    # Only the fill is exposure; the retry reserved nothing.
    assert agg(lg, "desk:D1").ob == 0 and agg(lg, "desk:D1").fb == 100000


def test_a_retry_of_an_open_or_partly_filled_order_is_an_open_replay(lg: Ledger) -> None:
    assert lg.reserve(order("r3", qty="10")).accepted
    assert lg.fill("r3", fill_id="f1", qty="4", price="100").ok
    again = lg.reserve(order("r3", qty="10"))
    assert (again.accepted, again.reason, again.state, again.replayed) == (
        True,
        Reason.OK,
        "open",
        True,
    )
    assert agg(lg, "desk:D1").n == 1


def test_a_retry_of_a_rejected_order_stays_rejected(lg: Ledger) -> None:
    first = lg.reserve(order("r4", qty="1001"))
    assert (first.reason, first.state) == (Reason.MAX_ORDER_QTY, "rejected")
    again = lg.reserve(order("r4", qty="1001"))
    assert (again.accepted, again.reason, again.state, again.replayed) == (
        False,
        Reason.MAX_ORDER_QTY,
        "rejected",
        True,
    )


def test_a_basket_retry_after_a_leg_was_released_is_order_closed_naming_the_leg(
    lg: Ledger,
) -> None:
    legs = [order("b1"), order("b2", side="sell")]
    first = lg.reserve_basket(legs, basket_id="bk")
    assert first.accepted and [d.state for d in first.legs] == ["open", "open"]
    still = lg.reserve_basket(legs, basket_id="bk")
    assert (still.accepted, still.replayed) == (True, True)
    assert [d.state for d in still.legs] == ["open", "open"]
    assert lg.release("b2", reason="cancelled").ok
    again = lg.reserve_basket(legs, basket_id="bk")
    assert (again.accepted, again.reason, again.leg, again.failing_order) == (
        False,
        Reason.ORDER_CLOSED,
        2,
        "b2",
    )
    assert again.legs[-1].state == "released"
    assert agg(lg, "desk:D1").n == 1
