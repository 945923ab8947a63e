"""Time in force through the gateway: the order, basket and replace bodies carry it;
POST /v1/sweep releases what is due."""

from __future__ import annotations

import time

from ledger.policy.lifecycle import format_ms

FAR = "2099-01-01T00:00:00Z"
FAR_MS = 4_070_908_800_000


def test_an_order_and_a_basket_carry_time_in_force(client, auth, new_order, ledger):
    body = new_order("g1", time_in_force="GTD", expire_time=FAR)
    r = client.post("/v1/orders", json=body, headers=auth("order-entry"))
    assert r.status_code == 201, r.json
    idx = ledger.keys.expiry("ACME")
    assert ledger.redis.zscore(idx, ledger.keys.order("ACME", "g1")) == FAR_MS
    legs = [new_order("b1", time_in_force="GTC"), new_order("b2", time_in_force="IOC")]
    r = client.post(
        "/v1/baskets", json={"basket_id": "B1", "orders": legs}, headers=auth("order-entry")
    )
    assert r.status_code == 201, r.json
    assert ledger.redis.hget(ledger.keys.order("ACME", "b1"), "tif") == b"GTC"
    assert ledger.redis.hget(ledger.keys.order("ACME", "b2"), "tif") == b"IOC"


def test_bad_time_in_force_is_400_with_its_message_and_changes_nothing(
    client, auth, new_order, snapshot
):
    before = snapshot()
    cases = [
        ({"time_in_force": "GFD"}, "time_in_force: must be DAY, GTC, GTD, IOC or FOK, got 'GFD'"),
        ({"time_in_force": "GTD"}, "expire_time: is required with time_in_force GTD"),
        ({"expire_time": FAR}, "expire_time: is only for time_in_force GTD, not DAY"),
        (
            {"time_in_force": "GTD", "expire_time": "2000-01-01T00:00:00Z"},
            "expire_time: must be after the ledger's time now; nothing changed",
        ),
    ]
    for fields, message in cases:
        r = client.post("/v1/orders", json=new_order("x1", **fields), headers=auth("order-entry"))
        assert (r.status_code, r.json["reason"], r.json["message"]) == (
            400,
            "INVALID_ORDER",
            message,
        )
    after = snapshot()
    assert {k: v for k, v in after.items() if b"audit" not in k} == {
        k: v for k, v in before.items() if b"audit" not in k
    }


def test_replace_keeps_or_changes_the_time_in_force(client, auth, new_order, ledger):
    body = new_order("g1", time_in_force="GTD", expire_time=FAR)
    assert client.post("/v1/orders", json=body, headers=auth("order-entry")).status_code == 201
    key, idx = ledger.keys.order("ACME", "g1"), ledger.keys.expiry("ACME")
    url = "/v1/orders/g1/replace"
    r = client.post(url, json={"qty": "50", "price": "187.25"}, headers=auth("order-entry"))
    assert r.status_code == 200 and ledger.redis.zscore(idx, key) == FAR_MS
    r = client.post(
        url,
        json={"qty": "50", "price": "187.25", "time_in_force": "GTC"},
        headers=auth("order-entry"),
    )
    assert r.status_code == 200 and ledger.redis.zscore(idx, key) is None
    r = client.post(
        url,
        json={"qty": "50", "price": "187.25", "time_in_force": "FOK"},
        headers=auth("order-entry"),
    )
    assert r.status_code == 400
    assert r.json["message"] == "time_in_force: a replace takes DAY, GTC or GTD, got 'FOK'"


def test_sweep_is_for_ops_and_releases_what_is_due(client, auth, new_order, ledger):
    soon = format_ms(int(time.time() * 1000) + 1500)
    body = new_order("g1", time_in_force="GTD", expire_time=soon)
    assert client.post("/v1/orders", json=body, headers=auth("order-entry")).status_code == 201
    assert client.post("/v1/sweep", headers=auth("order-entry")).status_code == 403
    assert client.post("/v1/sweep", json={"firm": "ACME"}, headers=auth("ops")).status_code == 400
    time.sleep(1.6)
    r = client.post("/v1/sweep", headers=auth("ops"))
    assert r.status_code == 200 and r.json == {"firms": {"ACME": 1}, "expired": 1}
    assert ledger.redis.hget(ledger.keys.order("ACME", "g1"), "why") == b"expired"
