"""Reference prices and symbol resume through the gateway (gateway/prices.py).

The example policy (firm ACME) is reloaded with ``reference_prices`` so that a
move beyond 10% halts; the ``feed-1`` token is market-data, ``ops-alice`` ops.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from gateway import create_app
from ledger import Ledger, parse_policy
from ledger.cli.token import token as token_group
from ledger.store.embedded import free_port
from ledger.store.tokens import Role, TokenStore
from tests.conftest import EXAMPLE_POLICY

PATH = "/v1/reference-prices"


@pytest.fixture
def priced(ledger: Ledger) -> Ledger:
    doc = yaml.safe_load(EXAMPLE_POLICY.read_text())
    doc["reference_prices"] = {"max_age_ms": 5000, "max_jump_pct": "10"}
    ledger.load_policy(parse_policy(doc, source="example+prices"), by="test")
    return ledger


@pytest.fixture
def post(client, auth):
    """``post(("AAPL", "100"), ...)``: a batch from the market-data token."""

    def send(*pairs: tuple[str, Any], role: str = "market-data") -> Any:
        body = {"prices": [{"symbol": s, "price": p} for s, p in pairs]}
        return client.post(PATH, json=body, headers=auth(role))

    return send


def test_market_data_sets_prices_and_ops_reads_them(client, auth, post, priced):
    r = post(("AAPL", "187.25"), ("MSFT", 410))
    assert r.status_code == 200, r.json
    assert r.json["by"] == "feed-1" and r.json["halted"] == []
    assert [(x["firm"], x["symbol"], x["price"], x["status"]) for x in r.json["results"]] == [
        ("ACME", "AAPL", "187.25", "set"),
        ("ACME", "MSFT", "410", "set"),
    ]
    got = client.get(f"{PATH}?symbol=AAPL", headers=auth("ops"))
    assert got.status_code == 200
    (row,) = got.json["prices"]
    assert (row["firm"], row["symbol"], row["price"], row["halted"]) == (
        "ACME",
        "AAPL",
        "187.25",
        False,
    )
    assert row["max_age_ms"] == 5000 and 0 <= row["age_ms"] < 5000 and row["stale"] is False
    everything = client.get(PATH, headers=auth("desk-head")).json["prices"]
    assert [x["symbol"] for x in everything] == ["AAPL", "MSFT"]


def test_risk_admin_may_set_prices_too(post, priced):
    r = post(("AAPL", "1"), role="risk-admin")
    assert r.status_code == 200 and r.json["by"] == "ra-1"


def test_a_jump_halts_and_ops_resume_is_audited_with_the_token_name(client, auth, post, priced):
    post(("AAPL", "100"))
    r = post(("AAPL", "150"))
    assert r.status_code == 200
    assert r.json["halted"] == ["AAPL"]
    (res,) = r.json["results"]
    assert (res["status"], res["jump_bps"]) == ("halted", 5000)
    (row,) = client.get(f"{PATH}?symbol=AAPL", headers=auth("ops")).json["prices"]
    assert row["halted"] is True and row["price"] == "150"
    assert row["halt"]["by"] == "feed-1" and (row["halt"]["from"], row["halt"]["to"]) == (
        "100",
        "150",
    )
    assert "50.00%" in row["halt"]["why"]

    r = client.post(
        "/v1/symbols/AAPL/resume", json={"reason": "news confirmed"}, headers=auth("ops")
    )
    assert r.status_code == 200, r.json
    assert r.json == {
        "symbol": "AAPL",
        "by": "ops-alice",
        "reason": "news confirmed",
        "resumed": ["ACME"],
        "already": False,
    }
    (row,) = client.get(f"{PATH}?symbol=AAPL", headers=auth("ops")).json["prices"]
    assert row["halted"] is False and row["halt"] is None
    (rec,) = [a for a in priced.audit_tail(100) if a.get("op") == "resume"]
    assert (rec["symbol"], rec["by"], rec["why"]) == ("AAPL", "ops-alice", "news confirmed")
    again = client.post("/v1/symbols/AAPL/resume", json={"reason": "x"}, headers=auth("ops"))
    assert again.status_code == 200 and again.json["already"] is True


def test_a_symbol_with_a_slash_is_set_and_resumed_by_its_path(client, auth, post, priced):
    post(("BRK/B", "400"))
    assert post(("BRK/B", "500")).json["halted"] == ["BRK/B"]
    r = client.post("/v1/symbols/BRK/B/resume", json={"reason": "split"}, headers=auth("ops"))
    assert r.status_code == 200 and r.json["resumed"] == ["ACME"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "missing field(s): prices"),
        ({"prices": []}, "non-empty array"),
        ({"prices": {"AAPL": "1"}}, "non-empty array"),
        ({"prices": [{"symbol": "AAPL", "price": "1"}], "by": "me"}, "unknown field(s): by"),
        ({"prices": ["AAPL=1"]}, "prices[0]: must be an object"),
        ({"prices": [{"symbol": "AAPL"}]}, "prices[0]: missing field(s): price"),
        ({"prices": [{"symbol": "AAPL", "price": "1", "t": 5}]}, "prices[0]: unknown field(s): t"),
        ({"prices": [{"symbol": 7, "price": "1"}]}, "prices[0].symbol: must be a string"),
        (
            {"prices": [{"symbol": "AAPL", "price": "1"}, {"symbol": "MSFT", "price": 1.5}]},
            "prices[1].price: numbers must be strings or integers, not floats",
        ),
        (
            {"prices": [{"symbol": "AAPL", "price": "1"}, {"symbol": "AAPL", "price": "2"}]},
            "prices[1]: AAPL is given twice",
        ),
        ({"prices": [{"symbol": "AAPL", "price": "1"}, {"symbol": "A B", "price": "2"}]}, "symbol"),
        (
            {"prices": [{"symbol": "AAPL", "price": "1"}, {"symbol": "MSFT", "price": "-2"}]},
            "price of MSFT: must not be negative",
        ),
        (
            {"prices": [{"symbol": "AAPL", "price": "0"}]},
            "price of AAPL: must be greater than zero",
        ),
    ],
)
def test_a_bad_batch_is_400_with_a_clear_message_and_changes_nothing(
    client, auth, post, priced, snapshot, body, message
):
    post(("AAPL", "100"))
    before = snapshot()
    r = client.post(PATH, json=body, headers=auth("market-data"))
    assert r.status_code == 400
    assert r.json["reason"] == "INVALID_REQUEST" and message in r.json["message"], r.json
    assert snapshot() == before


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/symbols/AAPL/resume", {}, "missing field(s): reason"),
        ("/v1/symbols/AAPL/resume", {"reason": ""}, "reason: must be a non-empty text"),
        ("/v1/symbols/AAPL/resume", {"reason": "  "}, "reason: must be a non-empty text"),
        ("/v1/symbols/AAPL/resume", {"reason": 5}, "reason: must be a text"),
        ("/v1/symbols/AAPL/resume", {"reason": "x", "by": "me"}, "unknown field(s): by"),
        ("/v1/symbols/A%20B/resume", {"reason": "x"}, "symbol"),
    ],
)
def test_resume_without_a_reason_or_with_a_bad_symbol_is_400_and_the_halt_stays(
    client, auth, post, priced, snapshot, path, body, message
):
    post(("AAPL", "100"))
    post(("AAPL", "200"))
    before = snapshot()
    r = client.post(path, json=body, headers=auth("ops"))
    assert r.status_code == 400
    assert message in r.json["message"], r.json
    assert snapshot() == before


@pytest.mark.parametrize(
    ("query", "message"),
    [("symbol=A%20B", "symbol"), ("sym=AAPL", "unknown query parameter(s): sym")],
)
def test_get_with_a_bad_query_is_400(client, auth, query, message):
    r = client.get(f"{PATH}?{query}", headers=auth("ops"))
    assert r.status_code == 400 and message in r.json["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "refused"),
    [
        ("POST", PATH, {"prices": [{"symbol": "AAPL", "price": "1"}]}, ["ops", "desk-head"]),
        ("GET", PATH, None, ["market-data", "order-entry"]),
        ("POST", "/v1/symbols/AAPL/resume", {"reason": "x"}, ["market-data", "risk-admin"]),
    ],
)
def test_roles_outside_a_route_are_403_and_change_nothing(
    client, auth, post, priced, snapshot, method, path, body, refused
):
    post(("AAPL", "100"))
    post(("AAPL", "200"))
    for role in refused:
        before = snapshot()
        r = client.open(path, method=method, json=body, headers=auth(role))
        assert r.status_code == 403 and r.json["reason"] == "FORBIDDEN", role
        assert snapshot() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", PATH, {"prices": [{"symbol": "AAPL", "price": "1"}]}),
        ("GET", PATH, None),
        ("POST", "/v1/symbols/AAPL/resume", {"reason": "x"}),
    ],
)
def test_unreachable_redis_is_503(method, path, body):
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    r = app.test_client().open(
        path, method=method, json=body, headers={"Authorization": "Bearer llt_whatever"}
    )
    assert r.status_code == 503 and r.json["reason"] == "RISK_UNAVAILABLE"


def test_a_redis_error_while_setting_is_503_and_stores_nothing(client, auth, priced, redis_client):
    redis_client.config_set("maxmemory", 1)  # every write now answers an OOM error
    try:
        r = client.post(
            PATH, json={"prices": [{"symbol": "AAPL", "price": "1"}]}, headers=auth("market-data")
        )
    finally:
        redis_client.config_set("maxmemory", 0)
    assert r.status_code == 503 and r.json["reason"] == "RISK_UNAVAILABLE"
    assert not redis_client.exists(priced.keys.prices("ACME"))


def test_token_cli_and_store_accept_the_market_data_role(redis_url, redis_client):
    result = CliRunner().invoke(
        token_group,
        ["create", "--role", "market-data", "--name", "feed-9"],
        env={"LEDGER_REDIS_URL": redis_url},
    )
    assert result.exit_code == 0, result.output
    principal = TokenStore(redis_client).lookup(result.stdout.strip())
    assert principal is not None and principal.role is Role.MARKET_DATA
