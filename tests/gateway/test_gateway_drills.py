"""``POST /v1/drills/...``: the CLI's drills through a gateway, for ops, against two real gunicorn
gateways (the deployment of tests/gateway/test_drills.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway import create_app
from ledger.facade.views import aggregates
from ledger.store.embedded import free_port
from ledger.store.tokens import Role, TokenStore
from tests.gateway.test_drills import Deployment, deployment, drill_audits, live

pytestmark = pytest.mark.slow

__all__ = ["deployment", "live"]  # fixtures, used by name


def _client(d: Deployment, **config: Any) -> FlaskClient:
    app = create_app({"REDIS_URL": d.url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True, **config})
    return app.test_client()


@pytest.fixture
def ops(live: tuple[Deployment, str, str]) -> Callable[..., Any]:
    """``ops("kill", {...})``: POST the drill with the ops token through a configured gateway."""
    d, token, ops_token = live
    client = _client(d, DRILL_GATEWAYS=d.bases, DRILL_TOKEN=token)

    def post(name: str, body: dict[str, Any] | None = None, bearer: str = ops_token) -> Any:
        return client.post(
            f"/v1/drills/{name}", json=body or {}, headers={"Authorization": f"Bearer {bearer}"}
        )

    return post


def test_the_kill_drill_answers_its_report_audited_with_the_tokens_name(live, ops):
    d, _, _ = live
    r = ops("kill")
    assert r.status_code == 200, r.json
    doc = r.json
    assert doc["outcome"] == "held" and doc["by"] == "o" and doc["scope"] == "account:ACC-CANARY"
    assert [p["gateway"] for p in doc["probes"]] == d.bases
    assert {(p["status"], p["reason"], p["held"]) for p in doc["probes"]} == {
        (403, "KILL_SWITCH", True)
    }
    lg = d.ledger()
    assert lg.kills() == []
    tail = lg.audit_tail(1000)
    kills = [(r["op"], r["by"]) for r in tail if r.get("op") in ("kill", "unkill")]
    assert kills == [("kill", "o"), ("unkill", "o")]
    outcomes = [(r["drill"], r["outcome"], r["by"]) for r in drill_audits(d, "ACME")]
    assert outcomes == [("kill", "started", "o"), ("kill", "held", "o")]


def test_entitlement_and_collar_drills_through_the_gateway(live, ops):
    r = ops("entitlement", {"account": "ACC-D"})
    assert r.status_code == 200 and r.json["outcome"] == "held"
    assert {p["reason"] for p in r.json["probes"]} == {"NOT_ENTITLED"}
    r = ops("collar")
    assert r.status_code == 200 and r.json["outcome"] == "held"
    assert [p["reason"] for p in r.json["probes"]] == ["PRICE_COLLAR"] * 2


def test_a_storm_through_the_gateway_releases_everything(live, ops):
    d, _, _ = live
    r = ops("storm", {"account": "ACC-D", "max_orders": 200, "max_wait_s": 10})
    assert r.status_code == 200, r.json
    burst = r.json["probes"][0]
    assert burst["reason"] == "MESSAGE_RATE" and burst["held"] is True
    nodes = aggregates(d.client, d.ledger().keys, "DRILL")
    assert nodes and all(a.gross == 0 and a.n == 0 for a in nodes.values())


def test_a_control_that_does_not_hold_is_a_failed_report(live):
    d, token, ops_token = live
    dead = f"http://127.0.0.1:{free_port()}"
    client = _client(d, DRILL_GATEWAYS=f"{d.bases[0]}, {dead}", DRILL_TOKEN=token)
    r = client.post("/v1/drills/kill", headers={"Authorization": f"Bearer {ops_token}"})
    assert r.status_code == 200
    assert r.json["outcome"] == "failed"
    ok, down = r.json["probes"]
    assert ok["held"] is True and down["held"] is False and down["status"] is None
    assert d.ledger().kills() == []


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("kill", {"account": "ACC-1"}, "account: ACC-1 is not a drill account"),
        ("kill", {"scope": "desk:EQ-CASH"}, "desk:EQ-CASH is not a drill scope"),
        ("kill", {"max_orders": 5}, "unknown field(s): max_orders"),
        ("storm", {"account": "ACC-D", "max_orders": 0}, "max_orders: must be a whole number"),
        ("storm", {"account": "ACC-D", "max_wait_s": 60}, "max_wait_s: must be a whole number"),
        ("collar", {"account": ["ACC-D"]}, "account: must be a string"),
    ],
)
def test_bad_input_is_400_and_drills_nothing(live, ops, name, body, message):
    d, _, _ = live
    r = ops(name, body)
    assert r.status_code == 400 and r.json["reason"] == "INVALID_REQUEST"
    assert message in r.json["message"]
    assert drill_audits(d, "ACME") == [] and drill_audits(d, "DRILL") == []
    assert d.ledger().kills() == []


def test_only_ops_may_drill_and_only_in_its_firms(live, ops):
    d, token, _ = live
    assert ops("kill", bearer=token).status_code == 403  # order-entry
    store = TokenStore(d.client)
    assert ops("kill", bearer=store.create(Role.DESK_HEAD, "dh", ["EQ-CASH"])).status_code == 403
    other = store.create(Role.OPS, "ops-drill-firm", firms=["DRILL"])
    r = ops("kill", bearer=other)  # the default drill account ACC-CANARY is in ACME
    assert r.status_code == 403 and "firm ACME" in r.json["message"]
    assert ops("kill", {"account": "ACC-D"}, bearer=other).json["outcome"] == "held"
    assert ops("failover").status_code == 404
    assert [r["by"] for r in drill_audits(d, "DRILL")] == ["ops-drill-firm"] * 2
    assert drill_audits(d, "ACME") == []


def test_a_gateway_without_drill_settings_says_what_to_set(live):
    d, _, ops_token = live
    r = _client(d).post("/v1/drills/kill", headers={"Authorization": f"Bearer {ops_token}"})
    assert r.status_code == 409
    assert "set LEDGER_DRILL_GATEWAYS" in r.json["message"]
    assert drill_audits(d, "ACME") == []


def test_drill_gateways_must_be_urls(live):
    d, _, _ = live
    with pytest.raises(ValueError, match="LEDGER_DRILL_GATEWAYS: 'gw-1:8000' is not an http"):
        _client(d, DRILL_GATEWAYS=["gw-1:8000"])
