"""Kill switches and utilization through the gateway, and the kill events it publishes."""

from __future__ import annotations

import threading
import time

import msgpack
import pytest

from gateway.events import channel, listen


@pytest.fixture
def orders(client, auth, new_order):
    """Two open orders on desk EQ-CASH (ACC-1, ACC-2) and one on EQ-DERIV (ACC-3)."""
    placed = [
        new_order("c1"),
        new_order("c2", trader="T-BOB", account="ACC-2", qty="10", price="10"),
        new_order("d1", trader="T-BOB", strategy="STAT-ARB", account="ACC-3", qty="10", price="10"),
    ]
    for o in placed:
        r = client.post("/v1/orders", json=o, headers=auth("order-entry"))
        assert r.status_code == 201, r.json
    return placed


def test_kill_lists_open_orders_under_the_scope_and_stops_the_next_order(
    client, auth, orders, new_order
):
    r = client.post(
        "/v1/kill", json={"scope": "desk:EQ-CASH", "reason": "runaway algo"}, headers=auth("ops")
    )
    assert r.status_code == 200
    assert r.json["op"] == "kill" and r.json["already"] is False
    assert sorted(r.json["open_orders"]) == ["c1", "c2"]
    assert r.json["by"] == "ops-alice" and r.json["published"] is True
    blocked = client.post("/v1/orders", json=new_order("c3"), headers=auth("order-entry"))
    assert blocked.status_code == 403
    assert blocked.json["reason"] == "KILL_SWITCH" and blocked.json["scope"] == "desk:EQ-CASH"
    other_desk = new_order(
        "d2", trader="T-BOB", strategy="STAT-ARB", account="ACC-3", qty="1", price="1"
    )
    assert (
        client.post("/v1/orders", json=other_desk, headers=auth("order-entry")).status_code == 201
    )


def test_get_kill_shows_who_when_why_and_unkill_lifts_it(client, auth, new_order):
    client.post(
        "/v1/kill", json={"scope": "trader:T-ALICE", "reason": "fat finger"}, headers=auth("ops")
    )
    for role in ("ops", "desk-head"):
        r = client.get("/v1/kill", headers=auth(role))
        assert r.status_code == 200
        (k,) = r.json["kills"]
        assert (k["scope"], k["by"], k["reason"]) == ("trader:T-ALICE", "ops-alice", "fat finger")
        assert isinstance(k["at_ms"], int) and k["at_ms"] > 0
    r = client.open(
        "/v1/kill",
        method="DELETE",
        json={"scope": "trader:T-ALICE", "reason": "ok"},
        headers=auth("ops"),
    )
    assert r.status_code == 200 and r.json["op"] == "unkill" and r.json["already"] is False
    assert client.get("/v1/kill", headers=auth("ops")).json["kills"] == []
    assert (
        client.post("/v1/orders", json=new_order("u1"), headers=auth("order-entry")).status_code
        == 201
    )


def test_kill_twice_says_already(client, auth):
    body = {"scope": "account:ACC-1", "reason": "x"}
    assert client.post("/v1/kill", json=body, headers=auth("ops")).json["already"] is False
    assert client.post("/v1/kill", json=body, headers=auth("ops")).json["already"] is True


def test_a_kill_through_one_instance_stops_the_next_order_on_another(
    client, other_app, auth, new_order
):
    other = other_app.test_client()
    assert (
        other.post("/v1/orders", json=new_order("x1"), headers=auth("order-entry")).status_code
        == 201
    )
    client.post("/v1/kill", json={"scope": "firm:ACME", "reason": "halt"}, headers=auth("ops"))
    r = other.post("/v1/orders", json=new_order("x2"), headers=auth("order-entry"))
    assert r.status_code == 403 and r.json["reason"] == "KILL_SWITCH"


def test_a_raw_global_kill_key_stops_orders_and_is_listed(client, auth, redis_client, new_order):
    redis_client.set("ledger:kill:global", "set by hand")
    r = client.post("/v1/orders", json=new_order("g1"), headers=auth("order-entry"))
    assert (
        r.status_code == 403 and r.json["reason"] == "KILL_SWITCH" and r.json["scope"] == "global"
    )
    (k,) = client.get("/v1/kill", headers=auth("ops")).json["kills"]
    assert k["scope"] == "global" and k["reason"] == "set by hand"
    redis_client.delete("ledger:kill:global")
    assert (
        client.post("/v1/orders", json=new_order("g2"), headers=auth("order-entry")).status_code
        == 201
    )


def test_kill_and_unkill_are_published(client, auth, orders, redis_client):
    received: list[dict] = []

    def consume() -> None:
        for event in listen(redis_client, "ledger", timeout_s=10):
            received.append(event)
            if len(received) == 2:
                return

    subscriber = threading.Thread(target=consume)
    subscriber.start()
    for _ in range(200):  # until the subscription is in place
        if redis_client.pubsub_numsub(channel("ledger")) == [(b"ledger:events", 1)]:
            break
        time.sleep(0.02)
    client.post("/v1/kill", json={"scope": "desk:EQ-CASH", "reason": "r1"}, headers=auth("ops"))
    client.open(
        "/v1/kill",
        method="DELETE",
        json={"scope": "desk:EQ-CASH", "reason": "r2"},
        headers=auth("ops"),
    )
    subscriber.join(timeout=15)
    assert [(e["type"], e["scope"], e["reason"]) for e in received] == [
        ("kill", "desk:EQ-CASH", "r1"),
        ("unkill", "desk:EQ-CASH", "r2"),
    ]
    assert sorted(received[0]["open_orders"]) == ["c1", "c2"]
    assert received[0]["by"] == "ops-alice"


BAD_KILLS = {
    "no body": (None, 400, "INVALID_REQUEST"),
    "malformed JSON": (b"{", 400, "INVALID_REQUEST"),
    "missing reason": ({"scope": "desk:EQ-CASH"}, 400, "INVALID_REQUEST"),
    "empty reason": ({"scope": "desk:EQ-CASH", "reason": " "}, 400, "INVALID_REQUEST"),
    "numeric reason": ({"scope": "desk:EQ-CASH", "reason": 1.5}, 400, "INVALID_REQUEST"),
    "unknown field": ({"scope": "desk:EQ-CASH", "reason": "r", "x": 1}, 400, "INVALID_REQUEST"),
    "bad scope kind": ({"scope": "team:EQ", "reason": "r"}, 400, "INVALID_REQUEST"),
    "scope without id": ({"scope": "desk:", "reason": "r"}, 400, "INVALID_REQUEST"),
    "scope not a string": ({"scope": ["desk:EQ-CASH"], "reason": "r"}, 400, "INVALID_REQUEST"),
    "unknown node": ({"scope": "desk:NOPE", "reason": "r"}, 404, "UNKNOWN_NODE"),
}


@pytest.mark.parametrize(("body", "status", "reason"), BAD_KILLS.values(), ids=BAD_KILLS.keys())
def test_bad_kill_requests_are_4xx_and_change_nothing(client, auth, snapshot, body, status, reason):
    before = snapshot()
    kwargs = (
        {"data": body, "content_type": "application/json"}
        if isinstance(body, bytes)
        else {"json": body}
    )
    r = client.post("/v1/kill", headers=auth("ops"), **kwargs)
    assert r.status_code == status, r.json
    assert r.json["reason"] == reason and r.json["message"]
    assert snapshot() == before


def test_utilization_reports_used_limit_and_percent(client, auth, orders):
    for role in ("ops", "risk-admin", "desk-head"):
        r = client.get("/v1/utilization?scope=desk:EQ-CASH", headers=auth(role))
        assert r.status_code == 200
        assert r.json["currency"] == "USD" and r.json["minor_units"] == 2
        rows = {(x["scope"], x["limit_name"]): x for x in r.json["rows"]}
        gross = rows[("desk:EQ-CASH", "max_gross_notional")]
        assert (gross["used"], gross["limit"]) == (1872500 + 10000, 1000000000)
        assert gross["percent"] == round(100 * 1882500 / 1000000000, 2)
        assert rows[("desk:EQ-CASH", "max_open_orders")]["used"] == 2


def test_utilization_defaults_to_global_for_ops(client, auth, orders):
    r = client.get("/v1/utilization", headers=auth("ops"))
    assert r.json["scopes"] == ["global"]
    assert {"firm:ACME", "desk:EQ-CASH", "desk:EQ-DERIV"} <= {x["scope"] for x in r.json["rows"]}


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        ("scope=desk:NOPE", 404, "UNKNOWN_NODE"),
        ("scope=nonsense", 400, "INVALID_REQUEST"),
        ("scope=desk:EQ-CASH&x=1", 400, "INVALID_REQUEST"),
    ],
)
def test_bad_utilization_queries(client, auth, query, status, reason):
    r = client.get(f"/v1/utilization?{query}", headers=auth("ops"))
    assert r.status_code == status and r.json["reason"] == reason


# -- cancel instructions --------------------------------------------------------------


def _by_id(cancels: list[dict]) -> list[dict]:
    return sorted(cancels, key=lambda c: c["order_id"])


def test_kill_with_cancel_open_answers_and_publishes_cancel_instructions(
    client, auth, orders, redis_client, ledger
):
    assert ledger.fill("c1", "f1", "40", "187.25").ok
    received: list[dict] = []

    def consume() -> None:
        for event in listen(redis_client, "ledger", timeout_s=10):
            received.append(event)
            return

    subscriber = threading.Thread(target=consume)
    subscriber.start()
    for _ in range(200):  # until the subscription is in place
        if redis_client.pubsub_numsub(channel("ledger")) == [(b"ledger:events", 1)]:
            break
        time.sleep(0.02)
    body = {"scope": "desk:EQ-CASH", "reason": "runaway", "cancel_open": True}
    r = client.post("/v1/kill", json=body, headers=auth("ops"))
    subscriber.join(timeout=15)
    assert r.status_code == 200, r.json
    expected = [
        {
            "action": "cancel",
            "order_id": "c1",
            "account": "ACC-1",
            "strategy": "MM-1",
            "trader": "T-ALICE",
            "symbol": "AAPL",
            "side": "buy",
            "leaves_qty": 60,
        },
        {
            "action": "cancel",
            "order_id": "c2",
            "account": "ACC-2",
            "strategy": "MM-1",
            "trader": "T-BOB",
            "symbol": "AAPL",
            "side": "buy",
            "leaves_qty": 10,
        },
    ]
    assert r.json["cancel_open"] is True and _by_id(r.json["cancels"]) == expected
    (event,) = received
    assert (event["type"], event["scope"], event["cancel_open"]) == ("kill", "desk:EQ-CASH", True)
    assert _by_id(event["cancels"]) == expected


def test_kill_without_cancel_open_carries_no_instructions(client, auth, orders):
    r = client.post("/v1/kill", json={"scope": "desk:EQ-CASH", "reason": "r"}, headers=auth("ops"))
    assert sorted(r.json["open_orders"]) == ["c1", "c2"] and "cancels" not in r.json


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", {"scope": "desk:EQ-CASH", "reason": "r", "cancel_open": "yes"}),
        ("POST", {"scope": "desk:EQ-CASH", "reason": "r", "cancel_open": 1}),
        ("DELETE", {"scope": "desk:EQ-CASH", "reason": "r", "cancel_open": True}),
    ],
)
def test_cancel_open_must_be_a_boolean_on_a_kill(client, auth, snapshot, method, body):
    before = snapshot()
    r = client.open("/v1/kill", method=method, json=body, headers=auth("ops"))
    assert r.status_code == 400 and r.json["reason"] == "INVALID_REQUEST"
    assert "cancel_open" in r.json["message"]
    assert snapshot() == before


def test_unkill_through_the_gateway_by_the_trigger_of_an_automatic_kill_is_refused(
    client, auth, redis_client
):
    record = {"by": "ops-alice", "why": "loss limit", "t": 1, "auto": 1}
    redis_client.hset("ledger:{ACME}:kills", "desk:EQ-CASH", msgpack.packb(record))
    r = client.open(
        "/v1/kill",
        method="DELETE",
        json={"scope": "desk:EQ-CASH", "reason": "ok"},
        headers=auth("ops"),
    )
    assert r.status_code == 403 and r.json["reason"] == "REENABLE_REFUSED"
    assert redis_client.hexists("ledger:{ACME}:kills", "desk:EQ-CASH")
