"""Order routes act for the caller's firm only (issue 9, item 1), through the test client.

Two order-entry tokens bound to firms F1 and F2 (tests/test_order_ids.py's
policy) each send order ``42``. Neither can ever reach the other firm's order
or account: another firm's id answers exactly as one never used. A token bound
to no firm is refused an id both firms hold until it names the account.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from gateway import create_app
from ledger import Ledger
from ledger.facade.views import Aggregates, aggregates
from ledger.store.tokens import Role, TokenStore
from tests.test_order_ids import two_firms


def order(order_id: str, firm: str, qty: str = "10") -> dict[str, Any]:
    trader, strategy, account = ("T1", "S1", "A1") if firm == "F1" else ("T2", "S2", "B1")
    return {
        "order_id": order_id,
        "trader": trader,
        "strategy": strategy,
        "account": account,
        "symbol": "XYZ",
        "side": "buy",
        "qty": qty,
        "price": "100",
    }


@pytest.fixture
def lg2(redis_client: redis.Redis) -> Ledger:
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(two_firms(), by="test")
    return lg


@pytest.fixture
def c(lg2: Ledger, redis_url: str) -> FlaskClient:
    app = create_app({"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True})
    return app.test_client()


@pytest.fixture
def h(redis_client: redis.Redis) -> dict[str, dict[str, str]]:
    store = TokenStore(redis_client)
    made = {
        "F1": store.create(Role.ORDER_ENTRY, "oms-f1", firms=["F1"]),
        "F2": store.create(Role.ORDER_ENTRY, "oms-f2", firms=["F2"]),
        "any": store.create(Role.ORDER_ENTRY, "oms-any"),
    }
    return {k: {"Authorization": f"Bearer {v}"} for k, v in made.items()}


def open_notional(client: redis.Redis, lg: Ledger) -> dict[str, int]:
    return {
        f: aggregates(client, lg.keys, f).get(f"firm:{f}", Aggregates()).ob for f in ("F1", "F2")
    }


def test_an_f2_token_releases_only_f2s_order_42(c, h, lg2, redis_client) -> None:
    assert c.post("/v1/orders", json=order("42", "F1"), headers=h["F1"]).status_code == 201
    assert c.post("/v1/orders", json=order("42", "F2", "20"), headers=h["F2"]).status_code == 201
    r = c.post("/v1/orders/42/release", json={"reason": "cancelled"}, headers=h["F2"])
    assert (r.status_code, r.json["released"]) == (200, 200000)
    assert open_notional(redis_client, lg2) == {"F1": 100000, "F2": 0}
    r = c.post("/v1/orders/42/release", json={"reason": "cancelled"}, headers=h["F1"])
    assert (r.status_code, r.json["released"]) == (200, 100000)


def test_another_firms_order_answers_as_an_unknown_one_and_changes_nothing(
    c, h, lg2, redis_client
) -> None:
    assert c.post("/v1/orders", json=order("77", "F1"), headers=h["F1"]).status_code == 201
    before = open_notional(redis_client, lg2)
    calls = [
        ("replace", {"qty": "5", "price": "100"}),
        ("cancel", None),
        ("fills", {"fill_id": "f1", "qty": "10", "price": "100"}),
        ("release", {"reason": "cancelled"}),
    ]
    for op, body in calls:
        theirs = c.post(f"/v1/orders/77/{op}", json=body, headers=h["F2"])
        never = c.post(f"/v1/orders/never-sent/{op}", json=body, headers=h["F2"])
        assert theirs.status_code == never.status_code == 404, (op, theirs.json)
        assert {**theirs.json, "order_id": None} == {**never.json, "order_id": None}
        # Naming F1's account does not open a way in either.
        with_account = {**(body or {}), "account": "A1"}
        r = c.post(f"/v1/orders/77/{op}", json=with_account, headers=h["F2"])
        assert r.status_code == 404, (op, r.json)
    assert open_notional(redis_client, lg2) == before


def test_a_firm_bound_token_cannot_reserve_on_another_firms_account(c, h, lg2, redis_client):
    r = c.post("/v1/orders", json=order("o1", "F1"), headers=h["F2"])
    unknown = c.post("/v1/orders", json={**order("o2", "F2"), "account": "NOPE"}, headers=h["F2"])
    assert r.status_code == unknown.status_code == 403
    assert (r.json["reason"], r.json["scope"]) == ("UNKNOWN_NODE", "account:A1")
    basket = {"basket_id": "b1", "orders": [order("l1", "F1")]}
    assert c.post("/v1/baskets", json=basket, headers=h["F2"]).status_code == 403
    assert open_notional(redis_client, lg2) == {"F1": 0, "F2": 0}


def test_an_unbound_token_must_name_the_account_of_an_id_two_firms_hold(
    c, h, lg2, redis_client
) -> None:
    assert c.post("/v1/orders", json=order("42", "F1"), headers=h["any"]).status_code == 201
    assert c.post("/v1/orders", json=order("42", "F2", "20"), headers=h["any"]).status_code == 201
    r = c.post("/v1/orders/42/release", json={"reason": "cancelled"}, headers=h["any"])
    assert (r.status_code, r.json["reason"]) == (400, "INVALID_ORDER")
    assert "F1, F2" in r.json["message"]
    assert open_notional(redis_client, lg2) == {"F1": 100000, "F2": 200000}
    named = c.post(
        "/v1/orders/42/release", json={"reason": "cancelled", "account": "B1"}, headers=h["any"]
    )
    assert (named.status_code, named.json["released"]) == (200, 200000)
    # Now only F1 holds an open 42, but F2's released one is still an order: still ambiguous.
    again = c.post("/v1/orders/42/cancel", headers=h["any"])
    assert again.status_code == 400
    named = c.post("/v1/orders/42/cancel", json={"account": "A1"}, headers=h["any"])
    assert named.status_code == 200
