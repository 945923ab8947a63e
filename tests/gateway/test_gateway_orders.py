"""POST /v1/orders and an order's replace, cancel, fills and release, through the test client."""

from __future__ import annotations

import json

import msgpack
import pytest

from ledger.facade.views import aggregates

DECISION_KEYS = {"decision", "reason", "scope", "limit", "used", "requested", "order_id"}


def desk_gross(redis_client, ledger) -> int:
    agg = aggregates(redis_client, ledger.keys, "ACME").get("desk:EQ-CASH")
    return agg.gross if agg else 0


def test_accepted_order_is_201_with_the_decision_body_and_reserved(
    client, auth, new_order, redis_client, ledger
):
    r = client.post("/v1/orders", json=new_order("o1"), headers=auth("order-entry"))
    assert r.status_code == 201
    assert r.mimetype == "application/json"
    assert set(r.json) >= DECISION_KEYS
    assert r.json["decision"] == "accepted" and r.json["reason"] == "OK"
    assert r.json["order_id"] == "o1" and r.json["notional"] == 1872500
    assert desk_gross(redis_client, ledger) == 1872500


def test_integer_qty_and_price_are_accepted(client, auth, new_order):
    r = client.post(
        "/v1/orders", json=new_order("o1", qty=100, price=187), headers=auth("order-entry")
    )
    assert r.status_code == 201 and r.json["notional"] == 1870000


def test_same_order_twice_is_replayed_and_reserved_once(
    client, auth, new_order, redis_client, ledger
):
    first = client.post("/v1/orders", json=new_order("o1"), headers=auth("order-entry"))
    again = client.post("/v1/orders", json=new_order("o1"), headers=auth("order-entry"))
    # 201 created it; the replay created nothing: 200, still open.
    assert (first.status_code, first.json["state"], first.json["replayed"]) == (201, "open", False)
    assert (again.status_code, again.json["decision"], again.json["state"]) == (
        200,
        "accepted",
        "open",
    )
    assert again.json["replayed"] is True
    assert desk_gross(redis_client, ledger) == 1872500


@pytest.mark.parametrize(
    ("close", "state"),
    [
        ("/release", "released"),
        ("/fills", "filled"),
    ],
)
def test_a_retry_of_a_closed_order_is_409_order_closed_never_accepted(
    client, auth, new_order, redis_client, ledger, close, state
):
    headers = auth("order-entry")
    assert client.post("/v1/orders", json=new_order("o1"), headers=headers).status_code == 201
    body = (
        {"reason": "cancelled"}
        if close == "/release"
        else {"fill_id": "f1", "qty": "100", "price": "187.25"}
    )
    assert client.post(f"/v1/orders/o1{close}", json=body, headers=headers).status_code == 200
    again = client.post("/v1/orders", json=new_order("o1"), headers=headers)
    assert again.status_code == 409, again.json
    assert (again.json["decision"], again.json["reason"], again.json["state"]) == (
        "rejected",
        "ORDER_CLOSED",
        state,
    )
    assert again.json["replayed"] is True
    agg = aggregates(redis_client, ledger.keys, "ACME")["desk:EQ-CASH"]
    assert agg.ob == 0 and agg.n == 0


@pytest.mark.parametrize(
    ("changes", "reason", "scope"),
    [
        ({"qty": "100001", "price": "1"}, "MAX_ORDER_QTY", "account:ACC-1"),
        ({"qty": "6000", "price": "187.25"}, "MAX_ORDER_NOTIONAL", "account:ACC-1"),
        ({"account": "ACC-2"}, "NOT_ENTITLED", None),
        ({"account": "ACC-404"}, "UNKNOWN_NODE", "account:ACC-404"),
        ({"trader": "T-NOBODY"}, "UNKNOWN_NODE", None),
    ],
)
def test_rejected_by_a_control_is_403_and_reserves_nothing(
    client, auth, new_order, redis_client, ledger, changes, reason, scope
):
    r = client.post("/v1/orders", json=new_order("r1", **changes), headers=auth("order-entry"))
    assert r.status_code == 403
    assert r.json["decision"] == "rejected" and r.json["reason"] == reason
    assert set(r.json) >= DECISION_KEYS and r.json["order_id"] == "r1"
    if scope:
        assert r.json["scope"] == scope
    assert aggregates(redis_client, ledger.keys, "ACME") == {}


def test_a_limit_reject_names_limit_used_and_requested(client, auth, new_order):
    # Trader T-ALICE: max gross 2,000,000.00; ACC-1 max order 1,000,000.00.
    for i in range(2):
        ok = client.post(
            "/v1/orders",
            json=new_order(f"a{i}", qty="5000", price="190"),
            headers=auth("order-entry"),
        )
        assert ok.status_code == 201
    r = client.post(
        "/v1/orders", json=new_order("a9", qty="5000", price="190"), headers=auth("order-entry")
    )
    assert r.status_code == 403
    assert r.json["reason"] == "GROSS_LIMIT" and r.json["scope"] == "trader:T-ALICE"
    assert (r.json["limit"], r.json["used"], r.json["requested"]) == (
        200000000,
        190000000,
        95000000,
    )


def test_duplicate_order_id_with_other_fields_is_refused(client, auth, new_order):
    assert (
        client.post("/v1/orders", json=new_order("d1"), headers=auth("order-entry")).status_code
        == 201
    )
    r = client.post("/v1/orders", json=new_order("d1", qty="7"), headers=auth("order-entry"))
    assert r.status_code == 403 and r.json["reason"] == "DUPLICATE_ORDER_ID"


BAD_BODIES = {
    "malformed JSON": b'{"order_id": "o1",',
    "not UTF-8": b'{"order_id": "\xff\xfe"}',
    "empty body": b"",
    "an array": b"[1, 2]",
    "a string": b'"order"',
    "NaN": b'{"qty": NaN}',
    "deep nesting": b"[" * 20000 + b"]" * 20000,
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_bodies_are_400_invalid_order_and_change_nothing(client, auth, snapshot, body):
    before = snapshot()
    r = client.post(
        "/v1/orders", data=body, content_type="application/json", headers=auth("order-entry")
    )
    assert r.status_code == 400
    assert r.json["decision"] == "rejected" and r.json["reason"] == "INVALID_ORDER"
    assert r.json["message"]
    assert snapshot() == before


BAD_FIELDS = {
    "missing qty": ({"qty": None}, "missing field(s): qty"),
    "unknown field": ({"quantity": "5"}, "unknown field(s): quantity"),
    "float qty": ({"qty": 100.0}, "qty"),
    "float price": ({"price": 187.25}, "price"),
    "huge float": ({"qty": "@1e400"}, "qty"),
    "negative qty": ({"qty": "-5"}, "negative"),
    "negative int qty": ({"qty": -5}, "negative"),
    "zero qty": ({"qty": 0}, "greater than zero"),
    "fractional qty": ({"qty": "1.5"}, "whole number"),
    "huge qty": ({"qty": "9" * 40}, "qty"),
    "huge int qty": ({"qty": 2**80}, "qty"),
    "qty over 2**53": ({"qty": 2**53}, "at most"),
    "notional too large to stay exact": ({"qty": "90000000", "price": "999999999"}, "exact"),
    "zero price": ({"price": "0"}, "greater than zero"),
    "exponent price": ({"price": "1e5"}, "price"),
    "boolean qty": ({"qty": True}, "qty"),
    "object price": ({"price": {"v": 1}}, "price"),
    "list trader": ({"trader": ["T-ALICE"]}, "trader"),
    "numeric trader": ({"trader": 7}, "trader"),
    "bad side": ({"side": "hold"}, "side"),
    "order id with a space": ({"order_id": "o 1"}, "order_id"),
    "order id with braces": ({"order_id": "{ACME}"}, "order_id"),
    "empty symbol": ({"symbol": ""}, "symbol"),
}


@pytest.mark.parametrize(("changes", "names"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_bad_fields_are_400_invalid_order_naming_the_field_and_change_nothing(
    client, auth, new_order, snapshot, redis_client, ledger, changes, names
):
    before = snapshot()
    body = {k: v for k, v in {**new_order("b1"), **changes}.items() if v is not None}
    # "@..." marks a raw JSON number that json.dumps cannot write (1e400 overflows to inf).
    data = json.dumps(body).replace('"@1e400"', "1e400")
    r = client.post(
        "/v1/orders", data=data, content_type="application/json", headers=auth("order-entry")
    )
    assert r.status_code == 400, r.json
    assert r.json["reason"] == "INVALID_ORDER"
    assert names in r.json["message"]
    assert snapshot() == before
    assert aggregates(redis_client, ledger.keys, "ACME") == {}


def test_msgpack_in_and_out(client, auth, new_order, redis_client, ledger):
    r = client.post(
        "/v1/orders",
        data=msgpack.packb(new_order("m1")),
        content_type="application/msgpack",
        headers=auth("order-entry"),
    )
    assert r.status_code == 201 and r.mimetype == "application/msgpack"
    assert msgpack.unpackb(r.data)["decision"] == "accepted"
    assert desk_gross(redis_client, ledger) == 1872500


def test_accept_msgpack_answers_msgpack_to_a_json_body(client, auth, new_order):
    r = client.post(
        "/v1/orders",
        json=new_order("m2"),
        headers={**auth("order-entry"), "Accept": "application/msgpack"},
    )
    assert r.status_code == 201 and r.mimetype == "application/msgpack"
    assert msgpack.unpackb(r.data)["order_id"] == "m2"


def test_accept_json_answers_json_to_a_msgpack_body(client, auth, new_order):
    r = client.post(
        "/v1/orders",
        data=msgpack.packb(new_order("m3")),
        content_type="application/msgpack",
        headers={**auth("order-entry"), "Accept": "application/json"},
    )
    assert r.status_code == 201 and r.json["order_id"] == "m3"


BAD_MSGPACK = {
    "garbage": b"\xc1\xc1\xc1",
    "truncated": msgpack.packb({"order_id": "o1", "qty": "5"})[:-3],
    "trailing bytes": msgpack.packb({"order_id": "o1"}) + b"\x01",
    "a list": msgpack.packb([1, 2, 3]),
    "integer map keys": msgpack.packb({1: "x"}),
    "float qty": msgpack.packb({"qty": 1.5}),
}


@pytest.mark.parametrize("body", BAD_MSGPACK.values(), ids=BAD_MSGPACK.keys())
def test_bad_msgpack_is_400_in_msgpack_and_changes_nothing(client, auth, new_order, snapshot, body):
    if body == BAD_MSGPACK["float qty"]:
        body = msgpack.packb({**new_order("f1"), "qty": 1.5})
    before = snapshot()
    r = client.post(
        "/v1/orders", data=body, content_type="application/msgpack", headers=auth("order-entry")
    )
    assert r.status_code == 400 and r.mimetype == "application/msgpack"
    answer = msgpack.unpackb(r.data)
    assert answer["reason"] == "INVALID_ORDER" and answer["message"]
    assert snapshot() == before


def test_body_larger_than_the_limit_is_refused(client, auth, snapshot):
    before = snapshot()
    r = client.post(
        "/v1/orders",
        data=b'{"x": "' + b"a" * 70000 + b'"}',
        content_type="application/json",
        headers=auth("order-entry"),
    )
    assert r.status_code == 413 and r.json["reason"] == "REQUEST_TOO_LARGE"
    assert snapshot() == before


# -- after the order ------------------------------------------------------------------


@pytest.fixture
def placed(client, auth, new_order):
    r = client.post("/v1/orders", json=new_order("p1"), headers=auth("order-entry"))
    assert r.status_code == 201
    return "p1"


def test_replace_is_200_and_moves_the_reservation(client, auth, placed, redis_client, ledger):
    r = client.post(
        f"/v1/orders/{placed}/replace",
        json={"qty": "50", "price": "187.25"},
        headers=auth("order-entry"),
    )
    assert r.status_code == 200 and r.json["decision"] == "accepted"
    assert r.json["notional"] == 936250
    assert desk_gross(redis_client, ledger) == 936250


def test_replace_beyond_a_limit_is_403_and_keeps_the_reservation(
    client, auth, placed, redis_client, ledger
):
    r = client.post(
        f"/v1/orders/{placed}/replace",
        json={"qty": "200000", "price": "1"},
        headers=auth("order-entry"),
    )
    assert r.status_code == 403 and r.json["reason"] == "MAX_ORDER_QTY"
    assert desk_gross(redis_client, ledger) == 1872500


@pytest.mark.parametrize(
    "body",
    [
        {"qty": "50"},
        {"qty": 5.0, "price": "1"},
        {"qty": "-1", "price": "1"},
        {"qty": "5", "price": "1", "x": 1},
    ],
)
def test_bad_replace_is_400_and_changes_nothing(client, auth, placed, snapshot, body):
    before = snapshot()
    r = client.post(f"/v1/orders/{placed}/replace", json=body, headers=auth("order-entry"))
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert r.json["order_id"] == placed
    assert snapshot() == before


def test_cancel_is_200_and_keeps_the_reservation_until_release(
    client, auth, placed, redis_client, ledger
):
    r = client.post(f"/v1/orders/{placed}/cancel", headers=auth("order-entry"))
    assert r.status_code == 200 and r.json["decision"] == "accepted"
    assert desk_gross(redis_client, ledger) == 1872500
    r = client.post(
        f"/v1/orders/{placed}/release", json={"reason": "cancelled"}, headers=auth("order-entry")
    )
    assert r.status_code == 200
    assert r.json["released"] == 1872500 and r.json["already_closed"] is False
    assert desk_gross(redis_client, ledger) == 0


def test_cancel_with_an_unknown_field_is_400(client, auth, placed, snapshot):
    before = snapshot()
    r = client.post(f"/v1/orders/{placed}/cancel", json={"why": "x"}, headers=auth("order-entry"))
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert snapshot() == before


def test_closed_order_is_409_for_replace_and_cancel_and_release_is_idempotent(client, auth, placed):
    client.post(
        f"/v1/orders/{placed}/release", json={"reason": "expired"}, headers=auth("order-entry")
    )
    again = client.post(
        f"/v1/orders/{placed}/release", json={"reason": "expired"}, headers=auth("order-entry")
    )
    assert again.status_code == 200 and again.json["already_closed"] is True
    r = client.post(
        f"/v1/orders/{placed}/replace", json={"qty": "5", "price": "1"}, headers=auth("order-entry")
    )
    assert r.status_code == 409 and r.json["reason"] == "ORDER_CLOSED"
    r = client.post(f"/v1/orders/{placed}/cancel", headers=auth("order-entry"))
    assert r.status_code == 409 and r.json["reason"] == "ORDER_CLOSED"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("replace", {"qty": "5", "price": "1"}),
        ("cancel", None),
        ("fills", {"fill_id": "f1", "qty": "5", "price": "1"}),
        ("release", {"reason": "cancelled"}),
    ],
)
def test_unknown_order_is_404_and_changes_no_aggregate(
    client, auth, placed, redis_client, ledger, path, body
):
    before = aggregates(redis_client, ledger.keys, "ACME")
    r = client.post(f"/v1/orders/nope-1/{path}", json=body, headers=auth("order-entry"))
    assert r.status_code == 404
    assert r.json["reason"] == "UNKNOWN_ORDER" and r.json["order_id"] == "nope-1"
    assert aggregates(redis_client, ledger.keys, "ACME") == before


def test_fills_move_exposure_and_a_repeated_fill_id_changes_nothing(
    client, auth, placed, redis_client, ledger
):
    body = {"fill_id": "f1", "qty": "40", "price": "187"}
    r = client.post(f"/v1/orders/{placed}/fills", json=body, headers=auth("order-entry"))
    assert r.status_code == 200 and r.json["reason"] == "OK"
    assert (r.json["leaves"], r.json["cum_qty"], r.json["fill_notional"]) == (60, 40, 748000)
    agg = aggregates(redis_client, ledger.keys, "ACME")["desk:EQ-CASH"]
    again = client.post(f"/v1/orders/{placed}/fills", json=body, headers=auth("order-entry"))
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert aggregates(redis_client, ledger.keys, "ACME")["desk:EQ-CASH"] == agg


@pytest.mark.parametrize(
    "body",
    [
        {"qty": "5", "price": "1"},
        {"fill_id": "f 1", "qty": "5", "price": "1"},
        {"fill_id": "f1", "qty": 5.5, "price": "1"},
        {"fill_id": "f1", "qty": "5", "price": "-1"},
        {"fill_id": "f1", "qty": "0", "price": "1"},
        {"fill_id": "f1", "qty": "5", "price": "1", "z": 0},
    ],
)
def test_bad_fill_is_400_and_changes_nothing(client, auth, placed, snapshot, body):
    before = snapshot()
    r = client.post(f"/v1/orders/{placed}/fills", json=body, headers=auth("order-entry"))
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert snapshot() == before


@pytest.mark.parametrize(
    "body",
    [{}, {"reason": ""}, {"reason": "x" * 201}, {"reason": 5}, {"reason": "cancelled", "qty": "1"}],
)
def test_bad_release_is_400_and_changes_nothing(client, auth, placed, snapshot, body):
    before = snapshot()
    r = client.post(f"/v1/orders/{placed}/release", json=body, headers=auth("order-entry"))
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert snapshot() == before


def test_order_ids_with_a_slash_work_in_paths(client, auth, new_order):
    assert (
        client.post("/v1/orders", json=new_order("desk/7"), headers=auth("order-entry")).status_code
        == 201
    )
    r = client.post("/v1/orders/desk/7/cancel", headers=auth("order-entry"))
    assert r.status_code == 200 and r.json["order_id"] == "desk/7"


def test_bad_order_id_in_the_path_is_400(client, auth, snapshot):
    before = snapshot()
    r = client.post("/v1/orders/a%20b/cancel", headers=auth("order-entry"))
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert snapshot() == before


def test_unknown_route_and_method_are_json_errors(client, auth):
    assert client.get("/v1/nothing").json["reason"] == "NOT_FOUND"
    r = client.get("/v1/orders", headers=auth("order-entry"))
    assert r.status_code == 405 and r.json["reason"] == "METHOD_NOT_ALLOWED"


def test_the_audit_names_the_token_that_sent_each_message(client, auth, new_order, ledger):
    headers = auth("order-entry")
    client.post("/v1/orders", json=new_order("o1"), headers=headers)
    client.post("/v1/orders/o1/cancel", headers=headers)
    client.post(
        "/v1/orders/o1/fills", json={"fill_id": "f1", "qty": "1", "price": "187"}, headers=headers
    )
    client.post("/v1/orders/o1/release", json={"reason": "cancelled"}, headers=headers)
    ops = {r["op"]: r["by"] for r in ledger.audit_tail(20) if r.get("order_id") == "o1"}
    assert set(ops) == {"reserve", "cancel", "fill", "release"}
    assert set(ops.values()) == {"oe-1"}


@pytest.mark.parametrize("qty", ["40", "30"])
def test_replace_at_or_below_the_filled_qty_says_why(
    client, auth, placed, redis_client, ledger, qty
):
    r = client.post(
        f"/v1/orders/{placed}/fills",
        json={"fill_id": "f1", "qty": "40", "price": "187.25"},
        headers=auth("order-entry"),
    )
    assert r.status_code == 200
    before = desk_gross(redis_client, ledger)
    r = client.post(
        f"/v1/orders/{placed}/replace",
        json={"qty": qty, "price": "187.25"},
        headers=auth("order-entry"),
    )
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert r.json["message"].startswith(
        f"qty: the new total qty ({qty}) must be above the qty already filled (40)"
    )
    assert desk_gross(redis_client, ledger) == before


def _map(*pairs: tuple[str, str]) -> bytes:
    """A msgpack map of the pairs as given, a key twice if it is given twice."""
    out = bytearray(b"\xde" + len(pairs).to_bytes(2, "big"))
    for key, value in pairs:
        out += msgpack.packb(key) + msgpack.packb(value)
    return bytes(out)


@pytest.mark.parametrize("kind", ["json", "msgpack"])
def test_a_key_given_twice_is_400_naming_it(client, auth, new_order, snapshot, kind):
    pairs = [*new_order("dup1").items(), ("qty", "100000")]
    if kind == "json":
        data = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"
        content_type = "application/json"
    else:
        data, content_type = _map(*pairs), "application/msgpack"
    before = snapshot()
    r = client.post(
        "/v1/orders",
        data=data,
        content_type=content_type,
        headers={**auth("order-entry"), "Accept": "application/json"},
    )
    assert r.status_code == 400 and r.json["reason"] == "INVALID_ORDER"
    assert r.json["message"] == 'the body gives the key "qty" more than once; send each key once'
    assert snapshot() == before


def test_a_key_given_twice_in_a_nested_object_is_400(client, auth, snapshot):
    before = snapshot()
    r = client.post(
        "/v1/reference-prices",
        data='{"prices": [{"symbol": "AAPL", "price": "1", "price": "1000"}]}',
        content_type="application/json",
        headers=auth("market-data"),
    )
    assert r.status_code == 400 and r.json["reason"] == "INVALID_REQUEST"
    assert '"price" more than once' in r.json["message"]
    assert snapshot() == before
