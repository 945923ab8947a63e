"""POST /v1/baskets: all-or-nothing through the gateway, and fills carrying P&L."""

from __future__ import annotations

import msgpack

from ledger.facade.views import aggregates


def test_accepted_basket_is_201_and_reserves_every_leg(
    client, auth, new_order, redis_client, ledger
):
    body = {"basket_id": "b1", "orders": [new_order("l1"), new_order("l2", side="sell")]}
    r = client.post("/v1/baskets", json=body, headers=auth("order-entry"))
    assert r.status_code == 201
    assert r.json["decision"] == "accepted" and r.json["leg"] == 0
    assert [leg["order_id"] for leg in r.json["legs"]] == ["l1", "l2"]
    desk = aggregates(redis_client, ledger.keys, "ACME")["desk:EQ-CASH"]
    assert desk.n == 2 and desk.gross == 2 * 1872500


def test_one_failing_leg_is_403_names_the_leg_and_changes_nothing(
    client, auth, new_order, snapshot
):
    before = snapshot()
    legs = [new_order("l1"), new_order("l2", qty="100001", price="1"), new_order("l3")]
    r = client.post(
        "/v1/baskets", json={"basket_id": "b1", "orders": legs}, headers=auth("order-entry")
    )
    assert r.status_code == 403
    assert r.json["reason"] == "MAX_ORDER_QTY"
    assert r.json["leg"] == 2 and r.json["failing_order"] == "l2"
    # The audit stream records the refusal; nothing else moved.
    after = snapshot()
    assert {k: v for k, v in after.items() if b"audit" not in k} == {
        k: v for k, v in before.items() if b"audit" not in k
    }


def test_bad_leg_is_400_naming_its_position(client, auth, new_order, snapshot):
    before = snapshot()
    legs = [new_order("l1"), {**new_order("l2"), "qty": 1.5}]
    r = client.post(
        "/v1/baskets", json={"basket_id": "b1", "orders": legs}, headers=auth("order-entry")
    )
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert r.json["message"].startswith("orders[2].qty")
    assert snapshot() == before


def test_basket_needs_an_id_and_orders_and_the_order_entry_role(client, auth, new_order):
    orders = [new_order("l1")]
    r = client.post("/v1/baskets", json={"orders": orders}, headers=auth("order-entry"))
    assert r.json["message"] == "missing field(s): basket_id"
    r = client.post(
        "/v1/baskets", json={"basket_id": "b", "orders": []}, headers=auth("order-entry")
    )
    assert r.status_code == 400 and "non-empty" in r.json["message"]
    r = client.post("/v1/baskets", json={"basket_id": "b", "orders": orders}, headers=auth("ops"))
    assert r.status_code == 403


def test_fill_carries_pnl_into_the_day_of_every_node(client, auth, new_order, redis_client, ledger):
    client.post("/v1/orders", json=new_order("o1"), headers=auth("order-entry"))
    r = client.post(
        "/v1/orders/o1/fills",
        json={"fill_id": "f1", "qty": "10", "price": "187.25", "pnl": "-12.50"},
        headers=auth("order-entry"),
    )
    assert r.status_code == 200 and r.json["reason"] == "OK"
    node = msgpack.unpackb(redis_client.hget(ledger.keys.agg("ACME"), "desk:EQ-CASH"))
    assert node[7] == -1250  # [6] day number, [7] that day's P&L in minor units
    bad = client.post(
        "/v1/orders/o1/fills",
        json={"fill_id": "f2", "qty": "1", "price": "1", "pnl": "-1.2.3"},
        headers=auth("order-entry"),
    )
    assert bad.status_code == 400 and bad.json["message"].startswith("pnl")


def test_a_basket_retry_is_200_while_open_and_409_once_a_leg_is_released(
    client, auth, new_order, redis_client, ledger
):
    headers = auth("order-entry")
    body = {"basket_id": "b1", "orders": [new_order("l1"), new_order("l2", side="sell")]}
    assert client.post("/v1/baskets", json=body, headers=headers).status_code == 201
    again = client.post("/v1/baskets", json=body, headers=headers)
    assert (again.status_code, again.json["replayed"]) == (200, True)
    assert [leg["state"] for leg in again.json["legs"]] == ["open", "open"]
    released = client.post("/v1/orders/l1/release", json={"reason": "expired"}, headers=headers)
    assert released.status_code == 200
    closed = client.post("/v1/baskets", json=body, headers=headers)
    assert closed.status_code == 409, closed.json
    assert (closed.json["reason"], closed.json["leg"], closed.json["failing_order"]) == (
        "ORDER_CLOSED",
        1,
        "l1",
    )
    assert closed.json["legs"][-1]["state"] == "released"
    assert aggregates(redis_client, ledger.keys, "ACME")["desk:EQ-CASH"].n == 1
