"""Fail closed: no Redis, a slow Redis or a Redis restart never lets an order through.

The restart tests run their own server (the session's kind, append-only, on
a port of their own) so that they can stop and start it mid-test.
"""

from __future__ import annotations

import pytest
import redis

from gateway import create_app
from ledger import Ledger
from ledger.facade.views import aggregates
from ledger.store.embedded import EmbeddedRedis, free_port
from ledger.store.tokens import Role, TokenStore
from tests.gateway.conftest import ORDER as BASE_ORDER

ORDER = {k: v for k, v in BASE_ORDER.items() if k != "order_id"}

ROUTES = [
    ("POST", "/v1/orders", {**ORDER, "order_id": "u1"}),
    ("POST", "/v1/orders/u1/replace", {"qty": "5", "price": "1"}),
    ("POST", "/v1/orders/u1/cancel", None),
    ("POST", "/v1/orders/u1/fills", {"fill_id": "f1", "qty": "5", "price": "1"}),
    ("POST", "/v1/orders/u1/release", {"reason": "cancelled"}),
    ("POST", "/v1/kill", {"scope": "global", "reason": "x"}),
    ("DELETE", "/v1/kill", {"scope": "global", "reason": "x"}),
    ("GET", "/v1/kill", None),
    ("GET", "/v1/utilization", None),
    ("GET", "/dashboard", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_a_closed_port_is_503_risk_unavailable_everywhere(method, path, body):
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    r = app.test_client().open(
        path,
        method=method,
        json=body,
        headers={"Authorization": "Bearer llt_whatever", "Accept": "application/json"},
    )
    assert r.status_code == 503
    assert r.json["reason"] == "RISK_UNAVAILABLE" and r.json["decision"] == "rejected"


def test_an_order_answer_when_unavailable_keeps_the_decision_shape(new_order):
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    r = app.test_client().post(
        "/v1/orders", json=new_order("o5"), headers={"Authorization": "Bearer llt_x"}
    )
    assert r.status_code == 503
    assert {
        k: r.json[k]
        for k in ("decision", "reason", "order_id", "scope", "limit", "used", "requested")
    } == {
        "decision": "rejected",
        "reason": "RISK_UNAVAILABLE",
        "order_id": "o5",
        "scope": None,
        "limit": None,
        "used": None,
        "requested": None,
    }


def test_a_slow_redis_is_503_within_the_timeout_and_then_recovers(
    ledger, redis_url, redis_client, tokens, new_order
):
    app = create_app({"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 50})
    c = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['order-entry']}"}
    assert c.post("/v1/orders", json=new_order("s1"), headers=headers).status_code == 201
    redis_client.execute_command("CLIENT", "PAUSE", "3000", "ALL")
    try:
        r = c.post("/v1/orders", json=new_order("s2"), headers=headers)
    finally:
        redis_client.execute_command("CLIENT", "UNPAUSE")
    assert r.status_code == 503 and r.json["reason"] == "RISK_UNAVAILABLE"
    assert not redis_client.exists(ledger.keys.order("ACME", "s2"))
    again = c.post("/v1/orders", json=new_order("s3"), headers=headers)
    assert again.status_code == 201


def test_a_redis_error_answer_is_503_and_nothing_is_reserved(
    ledger, redis_url, redis_client, tokens, new_order
):
    app = create_app({"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000})
    c = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['order-entry']}"}
    redis_client.config_set("maxmemory", 1)  # every write now answers an OOM error
    try:
        r = c.post("/v1/orders", json=new_order("e1"), headers=headers)
    finally:
        redis_client.config_set("maxmemory", 0)
    assert r.status_code == 503 and r.json["reason"] == "RISK_UNAVAILABLE"
    assert not redis_client.exists(ledger.keys.order("ACME", "e1"))
    assert aggregates(redis_client, ledger.keys, "ACME") == {}
    assert c.post("/v1/orders", json=new_order("e2"), headers=headers).status_code == 201


@pytest.fixture
def own_server(server):
    """An append-only server of the session's kind that the test may stop and start."""
    srv = EmbeddedRedis(binary=server.executable, appendonly=True).start()
    yield srv
    srv.cleanup()


def test_redis_stopped_mid_test_is_503_and_a_restart_recovers_without_a_new_app(
    own_server, new_order
):
    lg = Ledger(redis.Redis.from_url(own_server.url), actor="test")
    lg.load_policy("examples/policy.yaml", by="test")
    token = TokenStore(lg.redis).create(Role.ORDER_ENTRY, "oe")
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app({"REDIS_URL": own_server.url, "REDIS_TIMEOUT_MS": 2000})
    c = app.test_client()
    assert c.post("/v1/orders", json=new_order("before"), headers=headers).status_code == 201
    gross = aggregates(lg.redis, lg.keys, "ACME")["desk:EQ-CASH"].gross

    own_server.stop()
    down = [c.post("/v1/orders", json=new_order(f"down-{i}"), headers=headers) for i in range(5)]
    assert [r.status_code for r in down] == [503] * 5
    assert {r.json["reason"] for r in down} == {"RISK_UNAVAILABLE"}
    assert c.get("/readyz").status_code == 503

    own_server.start()  # same port, same append-only file; the script cache is empty
    lg.redis.connection_pool.disconnect()
    assert lg.redis.script_exists(lg.scripts.all()[0].script.sha) == [False]
    after = c.post("/v1/orders", json=new_order("after"), headers=headers)
    assert after.status_code == 201, after.json
    assert c.get("/readyz").status_code == 200
    assert aggregates(lg.redis, lg.keys, "ACME")["desk:EQ-CASH"].gross == gross + 1872500
    assert not any(lg.redis.exists(lg.keys.order("ACME", f"down-{i}")) for i in range(5))
    assert lg.check().ok


def test_an_order_is_503_while_the_audit_archive_is_behind(
    app, client, auth, new_order, ledger, snapshot, tmp_path
):
    import yaml

    from gateway import get_ledger
    from ledger import parse_policy
    from ledger.audit import Archiver
    from tests.conftest import EXAMPLE_POLICY

    doc = yaml.safe_load(EXAMPLE_POLICY.read_text())
    doc["audit"] = {"require_archive": True}
    ledger.load_policy(parse_policy(doc), by="test")
    with app.app_context():
        get_ledger().audit_maxlen = ledger.audit_maxlen = 4
    # Each order adds one record: the bound of 4 is reached within a few (bounded,
    # so that a gateway that never refuses fails below instead of looping).
    for i in range(10):
        r = client.post("/v1/orders", json=new_order(f"a{i}", qty="1"), headers=auth("order-entry"))
        if r.status_code != 201:
            break
    before = snapshot()
    r = client.post("/v1/orders", json=new_order("late", qty="1"), headers=auth("order-entry"))
    assert r.status_code == 503
    assert r.json["reason"] == "RISK_UNAVAILABLE" and "audit archive is behind" in r.json["message"]
    assert snapshot() == before
    Archiver(ledger.redis, ledger.keys, tmp_path).run()
    r = client.post("/v1/orders", json=new_order("late", qty="1"), headers=auth("order-entry"))
    assert r.status_code == 201
