"""Every sum the scripts keep stays exact, or the call is refused (issue 9, item 7).

A Lua number is a double: past 2^53 - 1 a sum rounds silently. Each test
brings one stored sum to exactly 2^53 - 1 (accepted), then asks for one more
unit: INVALID_ORDER naming the sum, and nothing written but the audit record.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from ledger import Ledger, Order, Reason, parse_policy
from ledger.facade.views import aggregates
from ledger.policy.money import MAX_EXACT


def _policy(minor_units: int) -> Any:
    # No limits anywhere: only exactness can refuse.
    return parse_policy(
        {
            "version": 1,
            "currency": "USD",
            "minor_units": minor_units,
            "firms": [{"id": "F", "desks": [{"id": "D", "accounts": [{"id": "A"}]}]}],
            "strategies": [{"id": "S", "accounts": ["A"]}],
            "traders": [{"id": "T", "accounts": ["A"], "strategies": ["S"]}],
        },
        source="exact",
    )


def _order(order_id: str, qty: int, price: str, side: str = "buy") -> Order:
    return Order(order_id, "T", "S", "A", "XYZ", side, str(qty), price)


def _state(client: redis.Redis) -> dict[bytes, Any]:
    """Every key but the audit streams: equal means nothing changed."""
    return {
        k: client.dump(k) for k in sorted(client.scan_iter(count=1000)) if not k.endswith(b"audit")
    }


@pytest.fixture
def ledger8(redis_client: redis.Redis) -> Ledger:
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(_policy(8), by="test")
    return lg


@pytest.fixture
def ledger0(redis_client: redis.Redis) -> Ledger:
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(_policy(0), by="test")
    return lg


def test_fills_up_to_2_53_minus_1_are_exact_and_one_more_unit_is_refused(
    ledger8: Ledger, redis_client: redis.Redis
) -> None:
    # minor_units 8: a price of 0.00000001 is one minor unit.
    qty = (MAX_EXACT - 1) // 2
    assert ledger8.reserve(_order("o1", qty, "0.00000002")).accepted
    assert ledger8.fill("o1", "f1", qty, "0.00000002").ok
    assert ledger8.reserve(_order("o2", 1, "0.00000001")).accepted
    edge = ledger8.fill("o2", "f1", 1, "0.00000001")
    assert edge.ok and edge.leaves == 0
    assert aggregates(redis_client, ledger8.keys, "F")["desk:D"].fb == MAX_EXACT

    before = _state(redis_client)
    # An overfill is recorded as exposure, but not past what stays exact.
    over = ledger8.fill("o2", "f2", 1, "0.00000001")
    assert over.reason is Reason.INVALID_ORDER and not over.duplicate
    assert "filled buy notional of firm:F would pass 2^53 - 1" in over.message
    assert _state(redis_client) == before
    # Nothing was kept, the fill id included: the same fill is refused again, not a duplicate.
    again = ledger8.fill("o2", "f2", 1, "0.00000001")
    assert again.reason is Reason.INVALID_ORDER and not again.duplicate
    assert aggregates(redis_client, ledger8.keys, "F")["desk:D"].fb == MAX_EXACT
    assert ledger8.check().ok


def test_the_issue_case_2_53_minus_1_then_2_is_refused_not_rounded(
    ledger8: Ledger, redis_client: redis.Redis
) -> None:
    assert ledger8.reserve(_order("o1", MAX_EXACT, "0.00000001")).accepted
    assert ledger8.fill("o1", "f1", MAX_EXACT, "0.00000001").ok
    before = _state(redis_client)
    r = ledger8.fill("o1", "f2", 2, "0.00000001")
    assert r.reason is Reason.INVALID_ORDER and "2^53 - 1" in r.message
    assert r.to_dict()["decision"] == "rejected"
    assert _state(redis_client) == before
    assert aggregates(redis_client, ledger8.keys, "F")["firm:F"].fb == MAX_EXACT


def test_realized_pnl_sums_stay_exact(ledger0: Ledger, redis_client: redis.Redis) -> None:
    assert ledger0.reserve(_order("o1", 10, "1")).accepted
    assert ledger0.fill("o1", "f1", 1, "1", pnl=str(-MAX_EXACT)).ok
    before = _state(redis_client)
    r = ledger0.fill("o1", "f2", 1, "1", pnl="-1")
    assert r.reason is Reason.INVALID_ORDER
    assert "today's realized P&L of firm:F" in r.message
    assert _state(redis_client) == before


def test_open_qty_up_to_2_53_minus_1_then_a_reserve_of_one_more_is_refused(
    ledger0: Ledger, redis_client: redis.Redis
) -> None:
    # minor_units 0 and a price of 0.1: the notional is a tenth of the qty, so
    # the open qty of the position is the sum that reaches the bound.
    assert ledger0.reserve(_order("o1", MAX_EXACT - 1, "0.1")).accepted
    assert ledger0.reserve(_order("o2", 1, "0.1")).accepted
    before = _state(redis_client)
    d = ledger0.reserve(_order("o3", 1, "0.1"))
    assert (d.accepted, d.reason, d.scope, d.limit) == (
        False,
        Reason.INVALID_ORDER,
        "firm:F|XYZ",
        MAX_EXACT,
    )
    assert d.message.startswith("open buy qty of firm:F|XYZ would pass 2^53 - 1")
    assert _state(redis_client) == before
    # The other side's sums are apart and still take orders.
    assert ledger0.reserve(_order("o4", 1, "0.1", side="sell")).accepted
    assert ledger0.check().ok


def test_a_replace_that_would_pass_2_53_minus_1_is_refused_and_changes_nothing(
    ledger0: Ledger, redis_client: redis.Redis
) -> None:
    assert ledger0.reserve(_order("o1", MAX_EXACT - 2, "0.1")).accepted
    assert ledger0.reserve(_order("o2", 1, "0.1")).accepted
    edge = ledger0.replace("o2", qty="2", price="0.1")
    assert edge.accepted  # open buy qty now exactly 2^53 - 1
    before = _state(redis_client)
    d = ledger0.replace("o2", qty="3", price="0.1")
    assert (d.accepted, d.reason) == (False, Reason.INVALID_ORDER)
    assert "open buy qty of firm:F|XYZ would pass 2^53 - 1" in d.message
    assert _state(redis_client) == before
    assert ledger0.check().ok


def test_a_basket_leg_that_would_pass_2_53_minus_1_refuses_the_basket(
    ledger0: Ledger, redis_client: redis.Redis
) -> None:
    before = _state(redis_client)
    legs = [_order("l1", MAX_EXACT, "0.1"), _order("l2", 1, "0.1")]
    b = ledger0.reserve_basket(legs, basket_id="b1")
    assert (b.accepted, b.reason, b.leg, b.failing_order) == (
        False,
        Reason.INVALID_ORDER,
        2,
        "l2",
    )
    assert "open buy qty of firm:F|XYZ" in b.legs[-1].message
    assert _state(redis_client) == before
    assert ledger0.reserve_basket(legs[:1], basket_id="b2").accepted
