"""Order ids are unique per firm; whose order an id means comes from the caller (issue 9, item 1).

Two firms may each have an order ``X``. A call that names the firm (or an
account) acts in that firm only; a call that names neither looks the id up
afresh in every firm, and an id two firms hold is refused, naming them,
changing nothing. No process cache decides which firm's order is touched.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import redis

from ledger import Ledger, Order, Reason, parse_policy
from ledger.facade.views import Aggregates, aggregates

#: Firm F1 (desk D1, account A1) and firm F2 (desk D2, account B1).
TWO_FIRMS: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": 2,
    "firms": [
        {"id": "F1", "desks": [{"id": "D1", "accounts": [{"id": "A1"}]}]},
        {
            "id": "F2",
            "desks": [{"id": "D2", "accounts": [{"id": "B1", "limits": {"max_order_qty": 1000}}]}],
        },
    ],
    "strategies": [{"id": "S1", "accounts": ["A1"]}, {"id": "S2", "accounts": ["B1"]}],
    "traders": [
        {"id": "T1", "accounts": ["A1"], "strategies": ["S1"]},
        {"id": "T2", "accounts": ["B1"], "strategies": ["S2"]},
    ],
}


def two_firms(only_first: bool = False) -> Any:
    doc = copy.deepcopy(TWO_FIRMS)
    if only_first:
        doc["firms"] = doc["firms"][:1]
        doc["strategies"] = doc["strategies"][:1]
        doc["traders"] = doc["traders"][:1]
    return parse_policy(doc, source="two-firms")


def in_f1(order_id: str, qty: str = "10") -> Order:
    return Order(order_id, "T1", "S1", "A1", "XYZ", "buy", qty, "100")


def in_f2(order_id: str, qty: str = "20") -> Order:
    return Order(order_id, "T2", "S2", "B1", "XYZ", "buy", qty, "100")


def open_notional(client: redis.Redis, lg: Ledger) -> dict[str, int]:
    return {
        firm: aggregates(client, lg.keys, firm).get(f"firm:{firm}", Aggregates()).ob
        for firm in ("F1", "F2")
    }


@pytest.fixture
def lg2(redis_client: redis.Redis) -> Ledger:
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(two_firms(), by="test")
    return lg


def test_the_same_id_in_two_firms_is_two_orders(lg2: Ledger, redis_client: redis.Redis) -> None:
    assert lg2.reserve(in_f1("X")).accepted
    assert lg2.reserve(in_f2("X")).accepted
    assert open_notional(redis_client, lg2) == {"F1": 100000, "F2": 200000}


def test_cached_and_fresh_clients_are_both_refused_an_ambiguous_id(
    lg2: Ledger, redis_client: redis.Redis
) -> None:
    # The scenario: one client sent X in F1, another X in F2, a third is fresh.
    sender_f1 = lg2
    sender_f2 = Ledger(redis_client, actor="other")
    fresh = Ledger(redis_client, actor="fresh")
    assert sender_f1.reserve(in_f1("X")).accepted
    assert sender_f2.reserve(in_f2("X")).accepted
    before = open_notional(redis_client, lg2)
    for client in (sender_f1, sender_f2, fresh):
        r = client.release("X", reason="cancelled")
        assert r.reason is Reason.INVALID_ORDER
        assert "F1, F2" in r.message and "firm=" in r.message
        assert client.fill("X", "f1", "1", "100").reason is Reason.INVALID_ORDER
        assert client.replace("X", qty="5", price="100").reason is Reason.INVALID_ORDER
        assert client.cancel_request("X").reason is Reason.INVALID_ORDER
    assert open_notional(redis_client, lg2) == before
    assert lg2.check().ok

    # Named, each call reaches exactly the order meant, whatever a client sent.
    assert sender_f1.release("X", reason="cancelled", firm="F2").released == 200000
    assert open_notional(redis_client, lg2) == {"F1": 100000, "F2": 0}
    assert fresh.release("X", reason="cancelled", account="A1").released == 100000
    assert open_notional(redis_client, lg2) == {"F1": 0, "F2": 0}


def test_a_named_firm_or_account_acts_in_that_firm_only(
    lg2: Ledger, redis_client: redis.Redis
) -> None:
    assert lg2.reserve(in_f1("X")).accepted
    assert lg2.reserve(in_f2("X")).accepted
    assert lg2.replace("X", qty="15", price="100", firm="F1").accepted
    assert lg2.cancel_request("X", account="B1").accepted
    fill = lg2.fill("X", "f1", "20", "100", firm="F2")
    assert (fill.ok, fill.leaves) == (True, 0)
    assert open_notional(redis_client, lg2) == {"F1": 150000, "F2": 0}
    # An id the named firm does not hold is unknown there, held elsewhere or not.
    assert lg2.release("Y", reason="x", firm="F1").reason is Reason.UNKNOWN_ORDER
    assert lg2.reserve(in_f2("Y")).accepted
    assert lg2.release("Y", reason="x", firm="F1").reason is Reason.UNKNOWN_ORDER
    assert lg2.fill("Y", "f1", "1", "100", account="A1").reason is Reason.UNKNOWN_ORDER
    assert lg2.release("Y", reason="x", firm="F1").released == 0
    # Held by one firm only, an unnamed call finds it.
    assert lg2.release("Y", reason="x").released == 200000
    assert lg2.release("nowhere", reason="x").reason is Reason.UNKNOWN_ORDER


def test_a_rejected_id_is_no_order_and_does_not_make_an_id_ambiguous(
    lg2: Ledger, redis_client: redis.Redis
) -> None:
    assert lg2.reserve(in_f1("Z")).accepted
    # Remembered in F2 for idempotency, but no order there.
    assert lg2.reserve(in_f2("Z", qty="5000")).reason is Reason.MAX_ORDER_QTY
    assert redis_client.exists(lg2.keys.order("F2", "Z"))
    assert lg2.release("Z", reason="x").released == 100000


def test_a_process_cache_never_decides_which_firm(redis_client: redis.Redis) -> None:
    # This client knew one firm when it sent X; a second firm and its own X
    # came later through another client.
    early = Ledger(redis_client, actor="early")
    early.load_policy(two_firms(only_first=True), by="test")
    assert early.reserve(in_f1("X")).accepted
    late = Ledger(redis_client, actor="late")
    late.load_policy(two_firms(), by="test")
    assert late.reserve(in_f2("X")).accepted
    r = early.release("X", reason="cancelled")
    assert (r.reason, r.released) == (Reason.INVALID_ORDER, 0)
    assert "F1, F2" in r.message
    assert early.release("X", reason="cancelled", firm="F1").released == 100000


def test_reserve_on_an_account_outside_the_callers_firms_is_refused(lg2: Ledger) -> None:
    d = lg2.reserve(in_f1("W"), firm="F2")
    assert (d.accepted, d.reason, d.scope) == (False, Reason.UNKNOWN_NODE, "account:A1")
    assert lg2.reserve(in_f1("W"), firm=["F1", "F2"]).accepted
    b = lg2.reserve_basket([in_f2("V1")], basket_id="b", firm="F1")
    assert (b.accepted, b.reason) == (False, Reason.UNKNOWN_NODE)
    assert lg2.release("V1", reason="x").reason is Reason.UNKNOWN_ORDER


def test_a_reserve_on_an_account_moved_to_another_firm_follows_it(
    redis_client: redis.Redis,
) -> None:
    # This client routed A1 to F1; a later load moved A1 (and its people) to F2.
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(two_firms(), by="test")
    assert lg.reserve(in_f1("m1")).accepted
    moved = copy.deepcopy(TWO_FIRMS)
    moved["firms"][0]["desks"][0]["accounts"] = [{"id": "A0"}]
    moved["firms"][1]["desks"][0]["accounts"].append({"id": "A1"})
    moved["strategies"] = [{"id": "S2", "accounts": ["B1", "A1"]}, {"id": "S1", "accounts": ["A0"]}]
    moved["traders"] = [
        {"id": "T2", "accounts": ["B1", "A1"], "strategies": ["S2"]},
        {"id": "T1", "accounts": ["A0"], "strategies": ["S1"]},
    ]
    Ledger(redis_client, actor="other").load_policy(parse_policy(moved, source="m"), by="test")
    d = lg.reserve(Order("m2", "T2", "S2", "A1", "XYZ", "buy", "1", "100"))
    assert (d.accepted, d.reason) == (True, Reason.OK)
    assert lg.release("m2", reason="x", account="A1").released == 10000
    # The caller's firms still bound the retry.
    refused = lg.reserve(Order("m3", "T2", "S2", "A1", "XYZ", "buy", "1", "100"), firm="F1")
    assert (refused.accepted, refused.reason) == (False, Reason.UNKNOWN_NODE)
