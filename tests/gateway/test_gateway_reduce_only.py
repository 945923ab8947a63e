"""An order's own reduce-only flag through the gateway: the order, basket and replace
bodies carry ``reduce_only``; the library decides (tests/test_reduce_only_order.py)."""

from __future__ import annotations


def test_a_flagged_order_without_a_position_is_403_reduce_only(client, auth, new_order, ledger):
    r = client.post(
        "/v1/orders", json=new_order("g1", reduce_only=True), headers=auth("order-entry")
    )
    assert (r.status_code, r.json["reason"], r.json["scope"]) == (403, "REDUCE_ONLY", "firm:ACME")
    legs = [new_order("b1"), new_order("b2", reduce_only=True)]
    r = client.post(
        "/v1/baskets", json={"basket_id": "B1", "orders": legs}, headers=auth("order-entry")
    )
    assert (r.status_code, r.json["reason"], r.json["leg"]) == (403, "REDUCE_ONLY", 2)
    assert ledger.redis.exists(ledger.keys.order("ACME", "b1")) == 0


def test_a_replace_may_flag_the_order(client, auth, new_order, ledger):
    assert (
        client.post("/v1/orders", json=new_order("g1"), headers=auth("order-entry")).status_code
        == 201
    )
    body = {"qty": "50", "price": "187.25", "reduce_only": True}
    r = client.post("/v1/orders/g1/replace", json=body, headers=auth("order-entry"))
    assert (r.status_code, r.json["reason"]) == (403, "REDUCE_ONLY")
    assert ledger.redis.hget(ledger.keys.order("ACME", "g1"), "ro") is None


def test_a_flag_that_is_not_a_bool_is_400(client, auth, new_order, snapshot):
    before = snapshot()
    r = client.post(
        "/v1/orders", json=new_order("g1", reduce_only="yes"), headers=auth("order-entry")
    )
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert r.json["message"] == "reduce_only: must be true or false, not a string"
    assert {k: v for k, v in snapshot().items() if b"audit" not in k} == {
        k: v for k, v in before.items() if b"audit" not in k
    }
