"""The body models: what they refuse and say, and that /openapi.json tells what routes do.

One model per body checks the request and is the document's schema, so these
tests hold the three together: the document is valid OpenAPI, every body it
describes is refused as it says (no field it does not list), and real answers
carry exactly the fields the answer models list.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from pydantic import ValidationError

from gateway import bodies, replies
from gateway.api import explain
from gateway.openapi import document
from ledger import parse_policy
from tests.conftest import EXAMPLE_POLICY


def test_the_document_is_valid_openapi(app):
    validate(document(app))


def _bodies(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "requestBody" in op:
                # The first role the description names ("Roles: market-data, risk-admin.").
                role = op["description"].split(":")[1].split(",")[0].split(".")[0].strip()
                out.append((method, path.replace("{order_id}", "o1"), role))
    return out


def test_every_described_body_refuses_a_field_it_does_not_list(app, client, auth, new_order):
    client.post("/v1/orders", json=new_order("o1"), headers=auth("order-entry"))
    bodies = _bodies(document(app))
    assert len(bodies) >= 20
    for method, path, role in bodies:
        path = path.replace("{override_id}", "OV-1").replace("{symbol}", "AAPL")
        r = client.open(path, method=method, json={"zz": 1}, headers=auth(role))
        assert (r.status_code, r.json["message"]) == (400, "unknown field(s): zz"), (path, r.json)


ORDER = {
    "order_id": "s1",
    "trader": "T-ALICE",
    "strategy": "MM-1",
    "account": "ACC-1",
    "symbol": "AAPL",
    "side": "buy",
    "qty": "1",
    "price": "1",
}
MESSAGES = {
    "null is missing": ({**ORDER, "qty": None, "price": None}, "missing field(s): qty, price"),
    "unknown before missing": ({"zz": 1, "b": 2}, "unknown field(s): b, zz"),
    "wrong type says what it was": (
        {**ORDER, "side": ["buy"]},
        "side: must be a string, not an array",
    ),
    "float is refused exactly": (
        {**ORDER, "price": 1.1},
        "price: numbers must be strings or integers, not floats (1.1 cannot be kept exact)",
    ),
    "a boolean qty": ({**ORDER, "qty": True}, "qty: must be a string or integer, not a boolean"),
    "an optional null is absent": ({**ORDER, "venue": None}, None),
}


@pytest.mark.parametrize(("body", "message"), MESSAGES.values(), ids=MESSAGES.keys())
def test_order_messages(client, auth, body, message):
    r = client.post("/v1/orders", json=body, headers=auth("order-entry"))
    if message is None:
        assert r.status_code == 201, r.json
    else:
        assert (r.status_code, r.json["reason"], r.json["message"]) == (
            400,
            "INVALID_ORDER",
            message,
        )


LEG_MESSAGES = {
    "legs are numbered from 1": ([ORDER, {**ORDER, "zz": 1}], "orders[2]: unknown field(s): zz"),
    "a leg's missing field": ([{**ORDER, "qty": None}], "orders[1]: missing field(s): qty"),
    "a leg that is not an object": ([ORDER, "x"], "orders[2]: must be an object, not a string"),
    "too many legs": ([1] * 501, "orders: a basket has at most 500 orders"),
    "not an array": ({"a": ORDER}, "orders: must be a non-empty array of orders, not an object"),
}


@pytest.mark.parametrize(("legs", "message"), LEG_MESSAGES.values(), ids=LEG_MESSAGES.keys())
def test_basket_messages_name_the_leg(client, auth, snapshot, legs, message):
    before = snapshot()
    body = {"basket_id": "b1", "orders": legs}
    r = client.post("/v1/baskets", json=body, headers=auth("order-entry"))
    assert (r.status_code, r.json["reason"], r.json["message"]) == (400, "INVALID_ORDER", message)
    assert snapshot() == before


def test_a_null_for_a_field_with_a_default_is_refused_not_missing(client, auth):
    r = client.post("/v1/reconcile", json={"records": [], "reason": None}, headers=auth("ops"))
    assert (r.status_code, r.json["message"]) == (400, "reason: must be a text, not null")


def test_a_state_outside_the_list_is_named(client, auth):
    body = {"scope": "strategy:MM-1", "state": "paused", "reason": "r"}
    r = client.post("/v1/states", json=body, headers=auth("ops"))
    assert r.json["message"] == "state: must be one of enabled, disabled, reduce_only; got 'paused'"


def _check(model: type[replies.Answer], r: Any, status: int) -> None:
    assert r.status_code == status, r.json
    model.model_validate(r.json)


def test_real_answers_have_exactly_the_documented_fields(client, auth, new_order, ledger):
    doc = yaml.safe_load(EXAMPLE_POLICY.read_text())
    doc["reference_prices"] = {"max_age_ms": 5000, "max_jump_pct": "10"}
    ledger.load_policy(parse_policy(doc, source="example+prices"), by="test")
    oe, ops, ra = auth("order-entry"), auth("ops"), auth("risk-admin")
    _check(replies.Decision, client.post("/v1/orders", json=new_order("a1"), headers=oe), 201)
    big = new_order("a2", qty="999999")
    _check(replies.Decision, client.post("/v1/orders", json=big, headers=oe), 403)
    _check(replies.Error, client.post("/v1/orders", json={}, headers=oe), 400)
    basket = {"basket_id": "b1", "orders": [new_order("l1"), new_order("l2")]}
    _check(replies.BasketDecision, client.post("/v1/baskets", json=basket, headers=oe), 201)
    fill = {"fill_id": "f1", "qty": "10", "price": "187.25", "pnl": "-1"}
    _check(replies.FillResult, client.post("/v1/orders/a1/fills", json=fill, headers=oe), 200)
    rel = client.post("/v1/orders/l1/release", json={"reason": "cancelled"}, headers=oe)
    _check(replies.ReleaseResult, rel, 200)
    kill = {"scope": "desk:EQ-DERIV", "reason": "r", "cancel_open": True}
    _check(replies.KillAnswer, client.post("/v1/kill", json=kill, headers=ops), 200)
    _check(replies.Kills, client.get("/v1/kill", headers=ops), 200)
    state = {"scope": "strategy:STAT-ARB", "state": "disabled", "reason": "r"}
    _check(replies.StateAnswer, client.post("/v1/states", json=state, headers=ops), 200)
    _check(replies.States, client.get("/v1/states", headers=ops), 200)
    _check(replies.Utilization, client.get("/v1/utilization", headers=ops), 200)
    md = auth("market-data")
    for price in ("100", "200"):
        prices = {"prices": [{"symbol": "AAPL", "price": price}]}
        _check(replies.PricesSet, client.post("/v1/reference-prices", json=prices, headers=md), 200)
    _check(replies.ReferencePrices, client.get("/v1/reference-prices", headers=ops), 200)
    resume = client.post("/v1/symbols/AAPL/resume", json={"reason": "ok"}, headers=ops)
    _check(replies.ResumeAnswer, resume, 200)
    override = {
        "scope": "desk:EQ-CASH",
        "limit": "max_gross_notional",
        "value": "20000000",
        "duration": "30m",
        "ticket": "T-1",
    }
    _check(replies.Override, client.post("/v1/overrides", json=override, headers=ra), 201)
    _check(replies.Overrides, client.get("/v1/overrides", headers=ra), 200)
    stress = {"scope": "desk:EQ-CASH", "factor": "0.5", "reason": "r"}
    _check(replies.StressAnswer, client.post("/v1/stress", json=stress, headers=ra), 200)
    _check(replies.StressList, client.get("/v1/stress", headers=ra), 200)
    records = [{**new_order("a1"), "status": "open"}]
    reconciled = client.post("/v1/reconcile", json={"records": records}, headers=ops)
    _check(replies.ReconcileReport, reconciled, 200)
    _check(replies.Status, client.get("/healthz"), 200)
    _check(replies.Status, client.get("/readyz"), 200)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_KEYS = st.sampled_from(["basket_id", "orders", "prices", "symbol", "price", "qty", "zz", *ORDER])


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from([bodies.NewOrder, bodies.Basket, bodies.PriceBatch, bodies.StormDrill]),
    body=st.dictionaries(_KEYS, _JSON | st.lists(st.dictionaries(_KEYS, _JSON), max_size=3)),
)
def test_any_body_is_accepted_or_explained_in_one_message(model, body):
    try:
        model.model_validate(body)
    except ValidationError as exc:
        message = explain(model, exc.errors(include_url=False))
        assert message and "is not valid" not in message, message
