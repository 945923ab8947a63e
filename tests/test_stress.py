"""Stress factors against a real server: stored, listed, audited, and applied by reserve."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import msgpack
import pytest
import redis

from ledger import Ledger
from ledger.errors import InvalidInput, UnknownScope
from ledger.reasons import Reason
from tests.helpers import TIGHT, load, order

#: The tight policy with gross limits only on the money side (no net limits), so a
#: stressed order meets GROSS_LIMIT first: firm 100000, desk D1 50000, trader T1 40000.
GROSS_ONLY = copy.deepcopy(TIGHT)
GROSS_ONLY["firms"][0]["limits"] = {"max_gross_notional": "100000"}
GROSS_ONLY["traders"][0]["limits"] = {"max_gross_notional": "40000"}


@pytest.fixture
def gl(redis_client: redis.Redis) -> Ledger:
    lg = Ledger(redis_client, actor="test")
    load(lg, GROSS_ONLY)
    return lg


def stored(lg: Ledger, scope: str, firm: str = "F1") -> dict[str, Any] | None:
    blob = lg.redis.hget(lg.keys.controls(firm), f"x|{scope}")
    return msgpack.unpackb(blob, raw=False) if blob else None


def stress_audit(lg: Ledger, firm: str = "F1") -> list[dict[str, Any]]:
    """The firm's stress records, oldest first; false (a script's "none") read as None."""
    out = []
    for _, fields in lg.redis.xrange(lg.keys.audit(firm)):
        rec = msgpack.unpackb(fields[b"m"], raw=False)
        if str(rec.get("op")).startswith("stress_"):
            out.append({k: None if v is False else v for k, v in rec.items()})
    return out


def a2(order_id: str, qty: str, price: str) -> Any:
    """An order of T1 on account A2, which has no notional limit of its own."""
    return order(order_id, qty=qty, price=price, account="A2")


def test_on_off_and_list(gl: Ledger) -> None:
    on = gl.stress.on("firm:F1", "0.5", by="cro", reason="vol spike")
    assert (on.op, on.firm, on.factor_millionths, on.previous_millionths, on.already) == (
        "on",
        "F1",
        500_000,
        None,
        False,
    )
    assert stored(gl, "firm:F1") == {"f": 500_000, "by": "cro", "why": "vol spike", "t": on.at_ms}
    (listed,) = gl.stress.list()
    assert listed.to_dict() == {
        "scope": "firm:F1",
        "firm": "F1",
        "factor": "0.5",
        "factor_millionths": 500_000,
        "by": "cro",
        "reason": "vol spike",
        "at_ms": on.at_ms,
    }
    assert listed.factor == Decimal("0.5")

    again = gl.stress.on("firm:F1", Decimal("0.25"), by="cro", reason="worse")
    assert (again.factor_millionths, again.previous_millionths) == (250_000, 500_000)
    off = gl.stress.off("firm:F1", by="cro", reason="calm")
    assert (off.factor_millionths, off.previous_millionths, off.already) == (None, 250_000, False)
    assert stored(gl, "firm:F1") is None and gl.stress.list() == []
    assert gl.stress.off("firm:F1", by="cro", reason="calm").already

    assert [(r["op"], r["f"], r["prev"], r["by"], r["why"]) for r in stress_audit(gl)] == [
        ("stress_on", 500_000, None, "cro", "vol spike"),
        ("stress_on", 250_000, 500_000, "cro", "worse"),
        ("stress_off", None, 250_000, "cro", "calm"),
        ("stress_off", None, None, "cro", "calm"),
    ]


@pytest.mark.parametrize(
    ("factor", "message"),
    [
        ("0", "greater than 0 and at most 1"),
        ("1.5", "greater than 0 and at most 1"),
        ("0.0000001", "more than 6 decimal places"),
        (0.5, "not 0.5"),
        ("-0.5", "must not be negative"),
        ("half", "must be an amount"),
        (None, "got nothing"),
    ],
)
def test_a_bad_factor_is_refused_and_nothing_is_stored(
    gl: Ledger, factor: Any, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as exc:
        gl.stress.on("firm:F1", factor, by="cro", reason="x")
    assert exc.value.field == "factor"
    assert gl.redis.hgetall(gl.keys.controls("F1")) == {}


def test_bad_scope_by_or_reason_is_refused(gl: Ledger) -> None:
    with pytest.raises(UnknownScope, match="desk:NOPE"):
        gl.stress.on("desk:NOPE", "0.5", by="cro", reason="x")
    with pytest.raises(InvalidInput, match="scope: must be KIND:ID"):
        gl.stress.on("NOPE", "0.5", by="cro", reason="x")
    with pytest.raises(InvalidInput, match="reason"):
        gl.stress.on("firm:F1", "0.5", by="cro", reason="")
    with pytest.raises(InvalidInput, match="by"):
        gl.stress.off("firm:F1", by="", reason="x")
    with pytest.raises(UnknownScope):
        gl.stress.off("desk:NOPE", by="cro", reason="x")
    assert gl.redis.hgetall(gl.keys.controls("F1")) == {}


def test_a_factor_survives_a_policy_load_and_lifts_after_its_node_is_gone(gl: Ledger) -> None:
    assert gl.stress.on("desk:D2", "1", by="cro", reason="watch").factor_millionths == 1_000_000
    load(gl, GROSS_ONLY)
    assert [s.scope for s in gl.stress.list()] == ["desk:D2"]
    without_d2 = copy.deepcopy(GROSS_ONLY)
    without_d2["firms"][0]["desks"].pop()
    without_d2["strategies"].pop()
    without_d2["traders"].pop()
    load(gl, without_d2)
    with pytest.raises(UnknownScope):
        gl.stress.on("desk:D2", "0.5", by="cro", reason="x")
    assert gl.stress.off("desk:D2", by="cro", reason="desk closed").previous_millionths == 1_000_000
    assert gl.stress.list() == []


# -- applied by reserve ---------------------------------------------------------------------


def test_half_the_gross_budget_under_a_factor_of_one_half(gl: Ledger) -> None:
    # Unstressed, T1 may hold 40000: an order of 20002 goes through.
    assert gl.reserve(a2("probe", "200", "100.01")).accepted
    assert gl.release("probe", "cancelled").ok

    gl.stress.on("firm:F1", "0.5", by="cro", reason="drill")
    over = gl.reserve(a2("o1", "200", "100.01"))
    assert (over.reason, over.scope, over.limit) == (Reason.GROSS_LIMIT, "trader:T1", 2_000_000)
    assert gl.reserve(a2("o2", "200", "100")).accepted
    assert gl.reserve(a2("o3", "1", "0.01")).reason is Reason.GROSS_LIMIT
    # Counts are not money: A2's max_order_qty (500) is not scaled.
    gl.release("o2", "cancelled")
    assert gl.reserve(a2("o4", "500", "0.01")).accepted

    gl.stress.off("firm:F1", by="cro", reason="drill over")
    assert gl.reserve(a2("o5", "200", "100.01")).accepted


def test_the_smallest_factor_on_the_path_wins(gl: Ledger) -> None:
    gl.stress.on("firm:F1", "0.8", by="cro", reason="a")
    gl.stress.on("desk:D1", "0.5", by="cro", reason="b")
    over = gl.reserve(a2("o1", "200", "100.01"))
    assert (over.reason, over.scope, over.limit) == (Reason.GROSS_LIMIT, "trader:T1", 2_000_000)
    gl.stress.off("desk:D1", by="cro", reason="b over")
    # Back to the firm's 0.8: T1 may hold 32000.
    assert gl.reserve(a2("o2", "200", "100.01")).accepted
    assert gl.reserve(a2("o3", "500", "23.996")).accepted  # 11998.00: exactly what is left
    assert gl.reserve(a2("o4", "1", "0.01")).reason is Reason.GROSS_LIMIT
