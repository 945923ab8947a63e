"""Bearer tokens and roles on every /v1 route: 401 and 403 change nothing."""

from __future__ import annotations

import pytest

from ledger.store.tokens import Role, TokenStore
from tests.gateway.conftest import ORDER as BASE_ORDER

ORDER = {**BASE_ORDER, "order_id": "z1"}
KILL = {"scope": "desk:EQ-CASH", "reason": "test"}
PRICES = {"prices": [{"symbol": "AAPL", "price": "187.25"}]}

#: (method, path, body, roles allowed)
ROUTES = [
    ("POST", "/v1/orders", ORDER, {"order-entry"}),
    ("POST", "/v1/orders/z0/replace", {"qty": "5", "price": "1"}, {"order-entry"}),
    ("POST", "/v1/orders/z0/cancel", None, {"order-entry"}),
    ("POST", "/v1/orders/z0/fills", {"fill_id": "f1", "qty": "5", "price": "1"}, {"order-entry"}),
    ("POST", "/v1/orders/z0/release", {"reason": "cancelled"}, {"order-entry"}),
    ("POST", "/v1/kill", KILL, {"ops"}),
    ("DELETE", "/v1/kill", KILL, {"ops"}),
    ("GET", "/v1/kill", None, {"ops", "desk-head"}),
    ("GET", "/v1/utilization?scope=desk:EQ-CASH", None, {"ops", "desk-head", "risk-admin"}),
    ("POST", "/v1/reference-prices", PRICES, {"market-data", "risk-admin"}),
    ("GET", "/v1/reference-prices", None, {"ops", "risk-admin", "desk-head"}),
    ("POST", "/v1/symbols/AAPL/resume", {"reason": "checked"}, {"ops"}),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _, _ in ROUTES]


@pytest.fixture
def open_order(client, auth):
    r = client.post("/v1/orders", json={**ORDER, "order_id": "z0"}, headers=auth("order-entry"))
    assert r.status_code == 201


def _call(client, method, path, body, headers):
    return client.open(path, method=method, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer llt_not-a-real-token", "Basic dXNlcjpwYXNz", "bearer  ", "Token x"],
)
def test_missing_or_wrong_token_is_401_and_changes_nothing(
    client, tokens, open_order, snapshot, method, path, body, allowed, header
):
    before = snapshot()
    headers = {"Authorization": header} if header is not None else {}
    r = _call(client, method, path, body, headers)
    assert r.status_code == 401
    assert r.json["reason"] == "UNAUTHORIZED"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES, ids=ROUTE_IDS)
def test_each_role_outside_the_route_is_403_and_changes_nothing(
    client, auth, open_order, snapshot, method, path, body, allowed
):
    for role in sorted({r.value for r in Role} - allowed):
        before = snapshot()
        r = _call(client, method, path, body, auth(role))
        assert r.status_code == 403, role
        assert r.json["reason"] == "FORBIDDEN" and role in r.json["message"]
        assert snapshot() == before


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES, ids=ROUTE_IDS)
def test_each_role_of_the_route_gets_through(client, auth, open_order, method, path, body, allowed):
    for role in sorted(allowed):
        r = _call(client, method, path, body, auth(role))
        assert r.status_code in (200, 201), (role, r.json)


def test_a_revoked_token_is_refused_at_once_by_every_instance(
    client, other_app, redis_client, tokens, auth
):
    other = other_app.test_client()
    assert client.get("/v1/kill", headers=auth("ops")).status_code == 200
    assert other.get("/v1/kill", headers=auth("ops")).status_code == 200
    assert TokenStore(redis_client).revoke("ops-alice")
    assert client.get("/v1/kill", headers=auth("ops")).status_code == 401
    assert other.get("/v1/kill", headers=auth("ops")).status_code == 401


def test_a_token_made_after_start_works_on_a_running_instance(client, redis_client):
    fresh = TokenStore(redis_client).create(Role.OPS, "late-ops")
    assert client.get("/v1/kill", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_query_and_cookie_tokens_are_refused_outside_the_dashboard(client, tokens, snapshot):
    before = snapshot()
    assert client.get(f"/v1/kill?token={tokens['ops']}").status_code == 401
    client.set_cookie("ledger_token", tokens["ops"])
    assert client.get("/v1/kill").status_code == 401
    assert snapshot() == before


@pytest.mark.parametrize(
    ("scope", "status"),
    [
        ("desk:EQ-CASH", 200),
        ("account:ACC-1", 200),
        ("desk:EQ-DERIV", 403),
        ("account:ACC-3", 403),
        ("firm:ACME", 403),
        ("global", 403),
        # Wholly on EQ-CASH (ACC-1); T-BOB also trades EQ-DERIV's ACC-3.
        ("trader:T-ALICE", 200),
        ("trader:T-BOB", 403),
        ("desk:NOPE", 403),
    ],
)
def test_desk_head_sees_its_own_desks_only(client, auth, scope, status):
    r = client.get(f"/v1/utilization?scope={scope}", headers=auth("desk-head"))
    assert r.status_code == status, r.json
    if status == 200:
        assert r.json["scopes"] == [scope]
        assert "desk:EQ-DERIV" not in {row["scope"] for row in r.json["rows"]}
    else:
        assert r.json["reason"] == "FORBIDDEN"


def test_desk_head_without_scope_gets_its_desks(client, auth):
    r = client.get("/v1/utilization", headers=auth("desk-head"))
    assert r.status_code == 200
    assert r.json["scopes"] == ["desk:EQ-CASH"]
    scopes = {row["scope"] for row in r.json["rows"]}
    assert "desk:EQ-CASH" in scopes and "desk:EQ-DERIV" not in scopes and "firm:ACME" not in scopes
