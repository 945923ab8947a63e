"""Every order-related audit record names the nodes it concerns, so that it can be scoped.

A desk head's dashboard picks its rejects by the records' ``firm`` and
``desk`` (gateway/scoping.py); a record without them would never be shown,
or be shown to the wrong desk.
"""

from __future__ import annotations

from typing import Any

from ledger import Ledger
from tests.helpers import order

PATH = {"firm": "F1", "desk": "D1", "account": "A1", "strategy": "S1", "trader": "T1"}


def _records(lg: Ledger, **match: Any) -> list[dict[str, Any]]:
    return [r for r in lg.audit_tail(200) if all(r.get(k) == v for k, v in match.items())]


def _tagged(record: dict[str, Any], sym: str = "XYZ", **path: str) -> None:
    want = {**PATH, **path, "sym": sym}
    assert {k: record.get(k) for k in want} == want, record


def test_the_records_of_an_orders_life_carry_its_path(lg: Ledger) -> None:
    assert lg.reserve(order("o1", qty="10")).accepted
    assert not lg.reserve(order("o2", qty="5000")).accepted  # MAX_ORDER_QTY at A1
    lg.replace("o1", qty="12", price="100")
    lg.replace("o1", qty="5000", price="100")  # refused
    lg.cancel_request("o1")
    lg.fill("o1", fill_id="f1", qty="2", price="100")
    lg.release("o1", reason="cancelled")
    for op, oid, n in (
        ("reserve", "o1", 1),
        ("reserve", "o2", 1),
        ("replace", "o1", 2),
        ("cancel", "o1", 1),
        ("fill", "o1", 1),
        ("release", "o1", 1),
    ):
        found = _records(lg, op=op, order_id=oid)
        assert len(found) == n, (op, found)
        for record in found:
            _tagged(record)


def test_an_order_on_another_desk_is_tagged_with_that_desk(lg: Ledger) -> None:
    assert lg.reserve(order("o3", account="A3", strategy="S2", trader="T2")).accepted
    (record,) = _records(lg, op="reserve", order_id="o3")
    _tagged(record, desk="D2", account="A3", strategy="S2", trader="T2")


def test_basket_records_name_the_failing_leg_or_every_desk(lg: Ledger) -> None:
    legs = [order("b1"), order("b2", account="A3", strategy="S2", trader="T2", qty="5000")]
    assert not lg.reserve_basket(legs, basket_id="bk1").accepted
    (record,) = _records(lg, op="basket", basket="bk1")
    _tagged(record, desk="D2", account="A3", strategy="S2", trader="T2")
    legs = [order("b3"), order("b4", account="A3", strategy="S2", trader="T2")]
    assert lg.reserve_basket(legs, basket_id="bk2").accepted
    (record,) = _records(lg, op="basket", basket="bk2")
    assert record["firm"] == "F1" and sorted(record["desks"]) == ["D1", "D2"]
    for oid in ("b3", "b4"):
        (leg,) = _records(lg, op="reserve", order_id=oid)
        assert leg["firm"] == "F1" and leg["desk"] in ("D1", "D2")


def test_kill_records_carry_the_firm_and_the_desk_of_the_scope(lg: Ledger) -> None:
    lg.kill("account:A2", by="ops-1", reason="drill")
    lg.kill("desk:D2", by="ops-1", reason="drill")
    lg.kill("strategy:S1", by="ops-1", reason="drill")
    (acc,) = _records(lg, op="kill", scope="account:A2")
    assert (acc["firm"], acc["desk"], acc["account"]) == ("F1", "D1", "A2")
    (desk,) = _records(lg, op="kill", scope="desk:D2")
    assert (desk["firm"], desk["desk"]) == ("F1", "D2")
    (strategy,) = _records(lg, op="kill", scope="strategy:S1")
    assert (strategy["firm"], strategy["strategy"], strategy.get("desk")) == ("F1", "S1", None)
    lg.unkill("desk:D2", by="ops-1", reason="done")
    (lift,) = _records(lg, op="unkill", scope="desk:D2")
    assert (lift["firm"], lift["desk"]) == ("F1", "D2")
