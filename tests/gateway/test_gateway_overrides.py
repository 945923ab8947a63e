"""Overrides and stress through the gateway: risk-admin only, who acts is the token.

examples/policy.yaml: account ACC-1 max_order_notional 1,000,000 USD, trader
T-ALICE max_gross_notional 2,000,000.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from ledger.store.tokens import Role, TokenStore

Headers = Callable[[str], dict[str, str]]
#: ACC-1, 6000 x 187.25 = 1,123,500 USD: over ACC-1's max_order_notional, within the rest.
BIG = {"qty": "6000"}
INCREASE = {
    "scope": "account:ACC-1",
    "limit": "max_order_notional",
    "value": "1200000",
    "duration": "30m",
    "ticket": "RISK-123",
}


@pytest.fixture
def admins(tokens: dict[str, str], redis_client: redis.Redis) -> Headers:
    """Headers of three risk admins: ``ra-1`` (from the shared fixture), ``ra-2``, ``ra-3``."""
    store = TokenStore(redis_client)
    held = {"ra-1": tokens["risk-admin"]}
    for name in ("ra-2", "ra-3"):
        held[name] = store.create(Role.RISK_ADMIN, name)
    return lambda name: {"Authorization": f"Bearer {held[name]}"}


def post(client: FlaskClient, path: str, headers: dict[str, str], body: Any = None) -> Any:
    """A POST with ``body`` as JSON, or with no body at all."""
    return client.post(path, json=body, headers=headers)


def test_an_increase_takes_two_other_tokens_then_lets_the_order_through(
    client: FlaskClient, auth: Headers, admins: Headers, new_order: Callable[..., Any]
) -> None:
    before = client.post("/v1/orders", json=new_order("o1", **BIG), headers=auth("order-entry"))
    assert before.status_code == 403 and before.json["reason"] == "MAX_ORDER_NOTIONAL"

    r = client.post("/v1/overrides", json=INCREASE, headers=admins("ra-1"))
    assert r.status_code == 201, r.json
    assert (r.json["id"], r.json["status"], r.json["requested_by"]) == ("OV-1", "pending", "ra-1")
    assert (r.json["value"], r.json["policy_value"]) == (120_000_000, 100_000_000)

    own = post(client, "/v1/overrides/OV-1/approve", admins("ra-1"))
    assert own.status_code == 409
    assert own.json["reason"] == "INVALID_REQUEST"
    assert own.json["message"] == "by: ra-1 requested OV-1; someone else must approve it"

    first = post(client, "/v1/overrides/OV-1/approve", admins("ra-2"))
    assert first.status_code == 200 and first.json["approvers"] == ["ra-2"]
    assert first.json["status"] == "pending"
    twice = post(client, "/v1/overrides/OV-1/approve", admins("ra-2"), {})
    assert twice.status_code == 409 and "ra-2 already approved OV-1" in twice.json["message"]
    still = client.post("/v1/orders", json=new_order("o2", **BIG), headers=auth("order-entry"))
    assert still.status_code == 403

    second = post(client, "/v1/overrides/OV-1/approve", admins("ra-3"))
    assert second.status_code == 200
    assert (second.json["status"], second.json["approvers"]) == ("active", ["ra-2", "ra-3"])
    after = client.post("/v1/orders", json=new_order("o3", **BIG), headers=auth("order-entry"))
    assert after.status_code == 201, after.json

    listed = client.get("/v1/overrides", headers=admins("ra-2"))
    assert listed.status_code == 200
    assert [(o["id"], o["status"]) for o in listed.json["overrides"]] == [("OV-1", "active")]


def test_identity_comes_from_the_token_never_the_body(client: FlaskClient, admins: Headers) -> None:
    r = client.post("/v1/overrides", json={**INCREASE, "by": "ra-2"}, headers=admins("ra-1"))
    assert r.status_code == 400 and r.json["message"] == "unknown field(s): by"
    client.post("/v1/overrides", json=INCREASE, headers=admins("ra-1"))
    r = client.post("/v1/overrides/OV-1/approve", json={"by": "ra-2"}, headers=admins("ra-1"))
    assert r.status_code == 400 and r.json["message"] == "unknown field(s): by"


def test_reject_cancel_and_a_decrease(client: FlaskClient, admins: Headers) -> None:
    client.post("/v1/overrides", json=INCREASE, headers=admins("ra-1"))
    no_reason = post(client, "/v1/overrides/OV-1/reject", admins("ra-2"), {})
    assert no_reason.status_code == 400 and "reason" in no_reason.json["message"]
    r = post(client, "/v1/overrides/OV-1/reject", admins("ra-2"), {"reason": "no"})
    assert r.status_code == 200
    assert (r.json["status"], r.json["decided_by"], r.json["decided_reason"]) == (
        "rejected",
        "ra-2",
        "no",
    )

    down = {**INCREASE, "value": 500000, "duration_ms": 60_000}
    del down["duration"]
    r = client.post("/v1/overrides", json=down, headers=admins("ra-2"))
    assert r.status_code == 201
    assert (r.json["id"], r.json["status"], r.json["value"]) == ("OV-2", "active", 50_000_000)
    assert r.json["until_ms"] - r.json["approved_at_ms"] == 60_000
    other = post(client, "/v1/overrides/OV-2/cancel", admins("ra-1"))
    assert other.status_code == 409
    mine = post(client, "/v1/overrides/OV-2/cancel", admins("ra-2"), {"reason": "done"})
    assert mine.status_code == 200 and mine.json["status"] == "cancelled"


@pytest.mark.parametrize(
    ("body", "status", "reason", "message"),
    [
        ({"scope": "desk:NOPE"}, 404, "UNKNOWN_NODE", "desk:NOPE"),
        (
            {"limit": "max_order_qty", "scope": "desk:EQ-CASH"},
            400,
            "INVALID_REQUEST",
            "max_order_qty is not set at desk:EQ-CASH",
        ),
        ({"duration": "9h"}, 400, "INVALID_REQUEST", "9h is longer"),
        ({"value": 1.5}, 400, "INVALID_REQUEST", "not floats"),
        ({"duration_ms": 1000}, 400, "INVALID_REQUEST", "exactly one of"),
        ({"ticket": None}, 400, "INVALID_REQUEST", "missing field(s): ticket"),
    ],
)
def test_bad_requests_change_nothing(
    client: FlaskClient,
    admins: Headers,
    snapshot: Callable[[], Any],
    body: dict[str, Any],
    status: int,
    reason: str,
    message: str,
) -> None:
    before = snapshot()
    r = client.post("/v1/overrides", json={**INCREASE, **body}, headers=admins("ra-1"))
    assert (r.status_code, r.json["reason"]) == (status, reason), r.json
    assert message in r.json["message"]
    after = snapshot()
    # Only the refusal's audit record may be new.
    assert {k: v for k, v in after.items() if not k.endswith(b":audit")} == {
        k: v for k, v in before.items() if not k.endswith(b":audit")
    }


def test_unknown_and_malformed_ids(client: FlaskClient, admins: Headers) -> None:
    r = post(client, "/v1/overrides/OV-9/approve", admins("ra-2"))
    assert (r.status_code, r.json["reason"]) == (404, "NOT_FOUND")
    r = post(client, "/v1/overrides/nine/approve", admins("ra-2"))
    assert (r.status_code, r.json["reason"]) == (400, "INVALID_REQUEST")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/overrides"),
        ("get", "/v1/overrides"),
        ("post", "/v1/overrides/OV-1/approve"),
        ("post", "/v1/stress"),
        ("delete", "/v1/stress"),
        ("get", "/v1/stress"),
    ],
)
def test_only_risk_admin(client: FlaskClient, auth: Headers, method: str, path: str) -> None:
    for role in ("ops", "order-entry", "desk-head"):
        r = client.open(path, method=method.upper(), json={}, headers=auth(role))
        assert (r.status_code, r.json["reason"]) == (403, "FORBIDDEN"), role
    assert client.open(path, method=method.upper(), json={}).status_code == 401


def test_stress_on_list_off(
    client: FlaskClient, admins: Headers, auth: Headers, new_order: Callable[..., Any]
) -> None:
    on = {"scope": "trader:T-ALICE", "factor": "0.01", "reason": "drill"}
    r = client.post("/v1/stress", json=on, headers=admins("ra-1"))
    assert r.status_code == 200
    assert (r.json["op"], r.json["factor"], r.json["by"], r.json["already"]) == (
        "on",
        "0.01",
        "ra-1",
        False,
    )
    # T-ALICE's 2,000,000 gross is now 20,000: the 18,725 order fits, a second does not.
    assert (
        client.post("/v1/orders", json=new_order("s1"), headers=auth("order-entry")).status_code
        == 201
    )
    second = client.post("/v1/orders", json=new_order("s2"), headers=auth("order-entry"))
    assert (second.status_code, second.json["reason"], second.json["limit"]) == (
        403,
        "GROSS_LIMIT",
        2_000_000,
    )
    listed = client.get("/v1/stress", headers=admins("ra-2")).json["stress"]
    assert [(s["scope"], s["factor"], s["by"], s["reason"]) for s in listed] == [
        ("trader:T-ALICE", "0.01", "ra-1", "drill")
    ]
    off = client.open(
        "/v1/stress",
        method="DELETE",
        json={"scope": "trader:T-ALICE", "reason": "over"},
        headers=admins("ra-2"),
    )
    assert off.status_code == 200 and off.json["previous"] == "0.01" and off.json["by"] == "ra-2"
    assert client.get("/v1/stress", headers=admins("ra-1")).json["stress"] == []
    assert (
        client.post("/v1/orders", json=new_order("s3"), headers=auth("order-entry")).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"scope": "desk:NOPE", "factor": "0.5", "reason": "x"}, 404, "UNKNOWN_NODE"),
        ({"scope": "firm:ACME", "factor": "0", "reason": "x"}, 400, "INVALID_REQUEST"),
        ({"scope": "firm:ACME", "factor": 0.5, "reason": "x"}, 400, "INVALID_REQUEST"),
        ({"scope": "firm:ACME", "factor": "0.5"}, 400, "INVALID_REQUEST"),
        (
            {"scope": "firm:ACME", "factor": "0.5", "reason": "x", "by": "me"},
            400,
            "INVALID_REQUEST",
        ),
    ],
)
def test_bad_stress_requests(
    client: FlaskClient, admins: Headers, body: dict[str, Any], status: int, reason: str
) -> None:
    r = client.post("/v1/stress", json=body, headers=admins("ra-1"))
    assert (r.status_code, r.json["reason"]) == (status, reason)
    assert client.get("/v1/stress", headers=admins("ra-1")).json["stress"] == []
