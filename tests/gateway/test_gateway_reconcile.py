"""``POST /v1/reconcile`` (gateway/reconcile.py): the ops role reconciles a drop copy."""

from __future__ import annotations

from typing import Any

from ledger.store.tokens import Role, TokenStore


def _drop_copy(new_order: Any) -> list[dict[str, Any]]:
    """o1 cancelled at the venue; o2 open there, unknown to the ledger; a fill of o3."""
    o1 = {**new_order("o1"), "status": "cancelled"}
    o2 = {**new_order("o2", qty="5"), "status": "open"}
    o3 = {**new_order("o3"), "status": "open"}
    return [o1, o2, o3, {"order_id": "o3", "fill_id": "x1", "qty": "4", "price": "187.25"}]


def _fields(o: dict[str, Any]) -> dict[str, Any]:
    keep = ("order_id", "account", "trader", "strategy", "symbol", "side", "qty", "price")
    return {k: o[k] for k in keep if k in o} | {"status": o.get("status", "open")}


def test_ops_reconciles_reports_then_applies(client, auth, new_order, ledger):
    for oid in ("o1", "o3"):
        r = client.post("/v1/orders", json=new_order(oid), headers=auth("order-entry"))
        assert r.status_code == 201, r.json
    records = [_fields(r) if "fill_id" not in r else r for r in _drop_copy(new_order)]
    shown = client.post("/v1/reconcile", json={"records": records}, headers=auth("ops"))
    assert shown.status_code == 200, shown.json
    kinds = {(d["order_id"], d["kind"]) for d in shown.json["differences"]}
    assert kinds == {("o1", "open_in_ledger"), ("o2", "missing_order"), ("o3", "missing_fill")}
    assert shown.json["applied"] is False and shown.json["repairs"] == []
    body = {"records": records, "reason": "INC-7", "apply": True}
    applied = client.post("/v1/reconcile", json=body, headers=auth("ops"))
    assert applied.status_code == 200, applied.json
    assert applied.json["by"] == "ops-alice"
    assert {r["order_id"]: r["after"] for r in applied.json["repairs"]} == {
        "o1": "released",
        "o2": "open",
        "o3": "open",
    }
    again = client.post("/v1/reconcile", json={"records": records}, headers=auth("ops"))
    assert again.json["ok"] is True and again.json["differences"] == []
    audited = [r for r in ledger.audit_tail(50) if r.get("op") == "reconciled"]
    assert {(r["order_id"], r["by"], r["why"]) for r in audited} == {
        ("o1", "ops-alice", "INC-7"),
        ("o2", "ops-alice", "INC-7"),
        ("o3", "ops-alice", "INC-7"),
    }
    assert ledger.check().ok


def test_reconcile_is_for_ops_only_and_refuses_bad_input(client, auth, new_order, snapshot):
    records = [_fields({**new_order("o9"), "status": "open"})]
    before = snapshot()
    for role in ("order-entry", "desk-head", "risk-admin"):
        r = client.post(
            "/v1/reconcile", json={"records": records, "apply": True}, headers=auth(role)
        )
        assert r.status_code == 403, (role, r.json)
    assert client.post("/v1/reconcile", json={"records": records}).status_code == 401
    bad = [
        ({"records": "x"}, "records: must be a list"),
        ({"records": records, "apply": "yes"}, "apply: must be true or false"),
        ({"records": records, "extra": 1}, "unknown field(s): extra"),
        ({"records": [{**records[0], "qty": 5.5}], "apply": True}, "record 1: qty"),
        ({"records": [{**records[0], "status": "lost"}], "apply": True}, "record 1: status"),
    ]
    for body, message in bad:
        r = client.post("/v1/reconcile", json=body, headers=auth("ops"))
        assert r.status_code == 400, (body, r.json)
        assert message in r.json["message"], r.json
    assert snapshot() == before


def test_a_token_bound_to_another_firm_reconciles_nothing_of_this_one(
    client, auth, new_order, redis_client, snapshot
):
    r = client.post("/v1/orders", json=new_order("o1"), headers=auth("order-entry"))
    assert r.status_code == 201
    other = TokenStore(redis_client).create(Role.OPS, "ops-other", firms=["OTHER"])
    records = [
        _fields({**new_order("o2"), "status": "open"}),
        _fields({**new_order("o1"), "status": "cancelled"}),
        {"order_id": "o1", "fill_id": "x1", "qty": "1", "price": "187.25"},
    ]
    before = snapshot()
    body = {"records": records, "apply": True}
    r = client.post("/v1/reconcile", json=body, headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 200, r.json
    # ACME's accounts and orders look unknown to it, as they do to its reserves.
    assert {(d["order_id"], d["kind"]) for d in r.json["differences"]} == {
        ("o2", "unknown_account"),
        ("o1", "unknown_account"),
    }
    assert r.json["repairs"] == []
    assert snapshot() == before
