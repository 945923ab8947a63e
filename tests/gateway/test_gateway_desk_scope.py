"""A desk head sees its desks only: API, dashboard, kills, states, prices, rejects.

Two desks D1 (account A1) and D2 (account A2) of firm F1, and a firm F2. The
strategy SPAN and the trader T-SPAN trade both desks' accounts; S-D1 and
T-D1 trade A1 only. The rule (docs/gateway.md, "What a desk head sees"): a
D1 desk head sees D1, A1, S-D1 and T-D1, never SPAN's or T-SPAN's totals nor
the firm's; switches that stop D1 are listed, but another desk's texts are not.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from ledger import Ledger, Order, parse_policy
from ledger.store.tokens import Role, TokenStore

GROSS = {"max_gross_notional": "1000000"}
POLICY: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": 2,
    "firms": [
        {
            "id": "F1",
            "limits": GROSS,
            "desks": [
                {"id": "D1", "limits": GROSS, "accounts": [{"id": "A1", "limits": GROSS}]},
                {"id": "D2", "limits": GROSS, "accounts": [{"id": "A2", "limits": GROSS}]},
            ],
        },
        {
            "id": "F2",
            "limits": GROSS,
            "desks": [{"id": "E1", "limits": GROSS, "accounts": [{"id": "B1", "limits": GROSS}]}],
        },
    ],
    "strategies": [
        {"id": "SPAN", "accounts": ["A1", "A2"], "limits": GROSS},
        {"id": "S-D1", "accounts": ["A1"], "limits": GROSS},
        {"id": "S-E1", "accounts": ["B1"], "limits": GROSS},
    ],
    "traders": [
        {"id": "T-SPAN", "accounts": ["A1", "A2"], "strategies": ["SPAN"], "limits": GROSS},
        {"id": "T-D1", "accounts": ["A1"], "strategies": ["S-D1"], "limits": GROSS},
        {"id": "T-E1", "accounts": ["B1"], "strategies": ["S-E1"], "limits": GROSS},
    ],
}
#: What a D1 desk head sees in full, and what it must never see.
MINE = {"desk:D1", "account:A1", "strategy:S-D1", "trader:T-D1"}
NOT_MINE = {
    "firm:F1",
    "desk:D2",
    "account:A2",
    "strategy:SPAN",
    "trader:T-SPAN",
    "firm:F2",
    "desk:E1",
    "account:B1",
    "strategy:S-E1",
    "trader:T-E1",
}


@pytest.fixture
def two_desks(ledger: Ledger, redis_client: redis.Redis) -> dict[str, dict[str, str]]:
    """The two-desk policy with exposure on both desks; headers per role."""
    ledger.load_policy(parse_policy(POLICY, source="two-desks"), by="test")
    for oid, account, strategy, trader in (
        ("s1", "A1", "SPAN", "T-SPAN"),
        ("s2", "A2", "SPAN", "T-SPAN"),
        ("d1", "A1", "S-D1", "T-D1"),
        ("e1", "B1", "S-E1", "T-E1"),
    ):
        d = ledger.reserve(Order(oid, trader, strategy, account, "AAPL", "buy", "100", "100"))
        assert d.accepted, d
    store = TokenStore(redis_client)
    return {
        role: {"Authorization": f"Bearer {store.create(r, name, desks)}"}
        for role, r, name, desks in (
            ("d1", Role.DESK_HEAD, "head-d1", ["D1"]),
            ("d2", Role.DESK_HEAD, "head-d2", ["D2"]),
            ("both", Role.DESK_HEAD, "head-both", ["D1", "D2"]),
            ("ops", Role.OPS, "ops-1", []),
            ("oe", Role.ORDER_ENTRY, "oms-1", []),
            ("monitoring", Role.MONITORING, "prometheus-1", []),
        )
    }


def _scopes(body: dict[str, Any]) -> set[str]:
    return {row["scope"] for row in body["rows"]}


def test_utilization_of_a_desk_leaves_out_spanning_strategies_and_traders(client, two_desks):
    r = client.get("/v1/utilization?scope=desk:D1", headers=two_desks["d1"])
    assert r.status_code == 200
    assert _scopes(r.json) == MINE
    # Without a scope: the same, the token's desks.
    assert _scopes(client.get("/v1/utilization", headers=two_desks["d1"]).json) == MINE
    # Only D1's own order counts at the nodes it sees: 10,000.00 USD each at A1, D1.
    used = {row["scope"]: row["used"] for row in r.json["rows"]}
    assert used["desk:D1"] == 2_000_000 and used["trader:T-D1"] == 1_000_000


@pytest.mark.parametrize("scope", ["strategy:SPAN", "trader:T-SPAN", "firm:F1", "account:A2"])
def test_a_spanning_node_or_another_desk_is_forbidden(client, two_desks, scope):
    r = client.get(f"/v1/utilization?scope={scope}", headers=two_desks["d1"])
    assert r.status_code == 403 and r.json["reason"] == "FORBIDDEN"


def test_a_node_wholly_on_the_desks_may_be_asked_for(client, two_desks):
    r = client.get("/v1/utilization?scope=strategy:S-D1", headers=two_desks["d1"])
    assert r.status_code == 200 and _scopes(r.json) == {"strategy:S-D1"}
    # A head of both desks sees the spanning strategy: all its accounts are its own.
    both = client.get("/v1/utilization?scope=strategy:SPAN", headers=two_desks["both"])
    assert both.status_code == 200 and _scopes(both.json) == {"strategy:SPAN"}


def _kill(lg: Ledger, scope: str, why: str) -> None:
    lg.kill(scope, by="ops-1", reason=why)


@pytest.fixture
def switches(ledger: Ledger, two_desks: dict[str, dict[str, str]]) -> None:
    for scope, why in (
        ("firm:F1", "firm-why"),
        ("desk:D2", "secret-of-d2"),
        ("account:A1", "a1-why"),
        ("strategy:SPAN", "secret-of-span"),
        ("trader:T-D1", "t-d1-why"),
        ("firm:F2", "secret-of-f2"),
        ("desk:E1", "secret-of-e1"),
    ):
        _kill(ledger, scope, why)
    for scope, why in (
        ("account:A1", "a1-state"),
        ("account:A2", "secret-a2-state"),
        ("strategy:SPAN", "secret-span-state"),
        ("strategy:S-E1", "secret-e1-state"),
    ):
        ledger.states.set(scope, "disabled", by="ops-1", reason=why)


SECRETS = ("secret-of-d2", "secret-of-span", "secret-of-f2", "secret-of-e1")


def test_kills_are_those_that_stop_the_desk_without_other_desks_texts(client, two_desks, switches):
    r = client.get("/v1/kill", headers=two_desks["d1"])
    assert r.status_code == 200
    kills = {k["scope"]: k for k in r.json["kills"]}
    assert set(kills) == {"firm:F1", "account:A1", "strategy:SPAN", "trader:T-D1"}
    assert kills["account:A1"]["reason"] == "a1-why" and kills["account:A1"]["by"] == "ops-1"
    assert kills["trader:T-D1"]["reason"] == "t-d1-why"
    for scope in ("firm:F1", "strategy:SPAN"):
        assert kills[scope]["reason"] is None and kills[scope]["by"] is None
        assert kills[scope]["at_ms"]
    assert not any(s in r.text for s in SECRETS) and "firm-why" not in r.text
    # Ops still see every switch.
    everything = client.get("/v1/kill", headers=two_desks["ops"]).json["kills"]
    assert {k["scope"] for k in everything} >= {"desk:D2", "firm:F2", "desk:E1"}


def test_a_global_kill_is_shown_as_active_without_its_text(client, ledger, two_desks):
    _kill(ledger, "global", "secret-global-why")
    r = client.get("/v1/kill", headers=two_desks["d1"])
    assert [k["scope"] for k in r.json["kills"]] == ["global"]
    assert "secret-global-why" not in r.text


def test_states_are_those_of_the_desk_without_other_desks_texts(client, two_desks, switches):
    r = client.get("/v1/states", headers=two_desks["d1"])
    assert r.status_code == 200
    states = {s["scope"]: s for s in r.json["states"]}
    assert set(states) == {"account:A1", "strategy:SPAN"}
    assert states["account:A1"]["reason"] == "a1-state"
    assert states["strategy:SPAN"]["state"] == "disabled"
    assert states["strategy:SPAN"]["reason"] is None and states["strategy:SPAN"]["by"] is None
    assert "secret" not in r.text


def test_reference_prices_are_those_of_the_desks_firm(client, ledger, two_desks):
    ledger.prices.set({"AAPL": "100"}, by="feed-1")
    r = client.get("/v1/reference-prices", headers=two_desks["d1"])
    assert r.status_code == 200
    assert {p["firm"] for p in r.json["prices"]} == {"F1"}
    ops = client.get("/v1/reference-prices", headers=two_desks["ops"]).json["prices"]
    assert {p["firm"] for p in ops} >= {"F1", "F2"}


def _page(client: FlaskClient, headers: dict[str, str]) -> str:
    r = client.get("/dashboard", headers=headers)
    assert r.status_code == 200
    return r.text


def test_the_dashboard_shows_the_same_nodes_and_switches(client, two_desks, switches):
    html = _page(client, two_desks["d1"])
    heat = set(re.findall(r'<article class="node" data-scope="([^"]+)">', html))
    assert heat == MINE
    kills = set(re.findall(r'class="kill" data-scope="([^"]+)"', html))
    assert kills == {"firm:F1", "account:A1", "strategy:SPAN", "trader:T-D1"}
    assert "a1-why" in html
    assert not any(s in html for s in SECRETS) and "firm-why" not in html
    assert not NOT_MINE & heat


def _reject(lg: Ledger, oid: str, account: str, strategy: str, trader: str) -> None:
    # Over every 1,000,000.00 gross limit on the path: GROSS_LIMIT.
    d = lg.reserve(Order(oid, trader, strategy, account, "MSFT", "sell", "20000", "100"))
    assert not d.accepted


def test_the_dashboard_of_a_desk_head_lists_its_desks_rejects_only(client, ledger, two_desks):
    _reject(ledger, "rej-d1", "A1", "S-D1", "T-D1")
    _reject(ledger, "rej-span-d1", "A1", "SPAN", "T-SPAN")
    _reject(ledger, "rej-d2", "A2", "SPAN", "T-SPAN")
    _reject(ledger, "rej-e1", "B1", "S-E1", "T-E1")
    html = _page(client, two_desks["d1"])
    assert "rej-d1" in html and "rej-span-d1" in html
    assert "rej-d2" not in html and "rej-e1" not in html
    counts = dict(re.findall(r'data-reason="([A-Z_]+)"><td>[A-Z_]+</td><td>(\d+)</td>', html))
    assert counts == {"GROSS_LIMIT": "2"}
    ops = _page(client, two_desks["ops"])
    assert all(o in ops for o in ("rej-d1", "rej-span-d1", "rej-d2", "rej-e1"))


def test_a_basket_reject_is_listed_for_the_desk_of_its_failing_leg(client, ledger, two_desks):
    legs = [
        Order("b-ok", "T-SPAN", "SPAN", "A2", "AAPL", "buy", "1", "1"),
        Order("b-bad", "T-D1", "S-D1", "A1", "MSFT", "sell", "20000", "100"),
    ]
    assert not ledger.reserve_basket(legs, basket_id="bk1").accepted
    assert "b-bad" in _page(client, two_desks["d1"])
    assert "b-bad" not in _page(client, two_desks["d2"])


def test_metrics_name_no_node(client, ledger, two_desks, switches):
    """Anyone may read /metrics, a desk head too: what they get carries kinds and codes,
    never a node or its texts. The ledger's gauges, which do, need a monitoring token."""
    order = {"order_id": "m1", "trader": "T-SPAN", "strategy": "SPAN", "account": "A2"}
    order |= {"symbol": "MSFT", "side": "sell", "qty": "20000", "price": "100"}
    r = client.post("/v1/orders", json=order, headers=two_desks["oe"])
    assert r.status_code == 403 and r.json["reason"] == "KILL_SWITCH"
    r = client.post(
        "/v1/kill", json={"scope": "account:A2", "reason": "x"}, headers=two_desks["ops"]
    )
    assert r.status_code == 200 and not r.json["already"]
    for headers in ({}, two_desks["d1"], two_desks["both"], two_desks["oe"]):
        text = client.get("/metrics", headers=headers).text
        assert "ledger_gateway_kill_switch_total" in text
        assert not re.search(r"\b(D1|D2|E1|A1|A2|B1|SPAN|T-SPAN|F1|F2)\b", text)
        assert not any(s in text for s in SECRETS)
        assert "firm=" not in text and "scope=" not in text
    # The nodes are there for a scraper that may see them all.
    text = client.get("/metrics", headers=two_desks["monitoring"]).text
    assert 'scope="account:A2"' in text and 'firm="F2"' in text
