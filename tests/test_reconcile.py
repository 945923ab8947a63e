"""Reconciliation against a drop copy (ledger/facade/reconcile.py, lua/reconcileOrder-7.lua)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from ledger import Ledger, Reason
from ledger.cli import cli
from ledger.errors import InvalidInput
from ledger.facade.reconcile import parse_records, read_drop_copy
from ledger.facade.views import aggregates
from tests.conftest import ROOT
from tests.helpers import agg, controls_doc, load, order


def venue(
    order_id: str,
    status: str = "open",
    qty: str = "10",
    price: str = "100",
    account: str = "A1",
    side: str = "buy",
) -> dict[str, Any]:
    """One order record of a drop copy, with the fields tests.helpers.order uses."""
    return {
        "order_id": order_id,
        "account": account,
        "trader": "T1" if account != "A3" else "T2",
        "strategy": "S1" if account != "A3" else "S2",
        "symbol": "XYZ",
        "side": side,
        "qty": qty,
        "price": price,
        "status": status,
    }


def fill(order_id: str, fill_id: str, qty: str = "4", price: str = "100") -> dict[str, Any]:
    return {"order_id": order_id, "fill_id": fill_id, "qty": qty, "price": price}


@pytest.fixture
def lg(redis_client: Any) -> Ledger:
    # TIGHT's hierarchy with room for the scenario's orders (no open-order cap).
    ledger = Ledger(redis_client, actor="test")
    load(ledger, controls_doc(tiers=False))
    return ledger


def _state(lg: Ledger) -> tuple[Any, ...]:
    """Everything reconciliation may change: aggregates, positions, open index, orders, audit."""
    r, k = lg.redis, lg.keys
    orders = sorted(r.scan_iter(match=k.order("F1", "*")))
    return (
        aggregates(r, k, "F1"),
        r.hgetall(k.positions("F1")),
        r.zrange(k.open_index("F1"), 0, -1),
        [r.hgetall(o) for o in orders],
        r.xlen(k.audit("F1")),
    )


def _kinds(report: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in report.differences:
        out.setdefault(d.order_id, set()).add(d.kind)
    return out


def _scenario(lg: Ledger) -> list[dict[str, Any]]:
    """A ledger and a drop copy that differ in every way reconcile knows."""
    for oid in ("SAME", "RELEASED", "CANCELLED", "FILLME", "QTY", "PRICE", "EXTRA"):
        assert lg.reserve(order(oid)).accepted
    assert lg.fill("FILLME", "F-OLD", 2, "100").ok
    assert lg.release("RELEASED", "cancelled").ok
    return [
        venue("SAME"),
        venue("MISSING", qty="7", price="99.5"),
        venue("RELEASED"),
        venue("CANCELLED", status="cancelled"),
        venue("FILLME", status="partially_filled"),
        fill("FILLME", "F-OLD", "2"),
        fill("FILLME", "F-NEW", "3", "101"),
        venue("QTY", qty="8"),
        venue("PRICE", price="100.25"),
        venue("NOACCOUNT", account="NOPE"),
        fill("GHOST", "F-GHOST"),
        venue("DONE-UNKNOWN", status="filled"),
        fill("DONE-UNKNOWN", "F-DU", "10"),
    ]


def test_every_kind_of_difference_is_reported_and_nothing_changes(lg: Ledger) -> None:
    records = _scenario(lg)
    before = _state(lg)
    report = lg.reconcile(records, by="ops-anna", reason="morning reconciliation")
    assert _kinds(report) == {
        "MISSING": {"missing_order"},
        "RELEASED": {"closed_in_ledger"},
        "CANCELLED": {"open_in_ledger"},
        "FILLME": {"missing_fill"},
        "QTY": {"qty_differs"},
        "PRICE": {"price_differs"},
        "NOACCOUNT": {"unknown_account"},
        "GHOST": {"unknown_order"},
        "DONE-UNKNOWN": {"missing_order", "missing_fill"},
        "EXTRA": {"not_in_drop_copy"},
    }
    missing_fills = [d.venue for d in report.differences if d.kind == "missing_fill"]
    assert sorted(missing_fills) == ["F-DU 10@100", "F-NEW 3@101"]
    price = next(d for d in report.differences if d.kind == "price_differs")
    assert (price.ledger, price.venue) == ("100", "100.25")
    assert not report.ok and report.repairs == [] and not report.applied
    assert _state(lg) == before


def test_apply_repairs_each_difference_and_a_second_run_finds_none(lg: Ledger) -> None:
    records = _scenario(lg)
    report = lg.reconcile(records, by="ops-anna", reason="after failover", apply=True)
    assert {r.order_id: (r.reason, r.before, r.after) for r in report.repairs} == {
        "MISSING": (Reason.OK, "", "open"),
        "RELEASED": (Reason.OK, "released", "open"),
        "CANCELLED": (Reason.OK, "open", "released"),
        "FILLME": (Reason.OK, "open", "open"),
        "QTY": (Reason.OK, "open", "open"),
        "PRICE": (Reason.OK, "open", "open"),
        "DONE-UNKNOWN": (Reason.OK, "", "filled"),
    }
    again = lg.reconcile(records, by="ops-anna", reason="after failover", apply=True)
    # What reconcile leaves to a person stays reported; everything else is gone.
    assert _kinds(again) == {
        "NOACCOUNT": {"unknown_account"},
        "GHOST": {"unknown_order"},
        "EXTRA": {"not_in_drop_copy"},
    }
    assert again.repairs == []
    # The aggregates are the sums over the repaired orders, and no limit is exceeded.
    check = lg.check()
    assert check.ok, check.breaches
    # 7 @ 99.5 + 10 @ 100 (re-opened) + 5 left @ 100 + 8 @ 100 + 10 @ 100.25 + EXTRA, SAME.
    open_buy = 69650 + 100000 + 50000 + 80000 + 100250 + 2 * 100000
    filled = (2 * 10000 + 3 * 10100) + 10 * 10000
    assert (agg(lg, "account:A1").ob, agg(lg, "account:A1").fb) == (open_buy, filled)
    assert agg(lg, "account:A1").n == 7


def test_apply_is_audited_with_who_and_why(lg: Ledger) -> None:
    lg.reconcile(_scenario(lg), by="ops-anna", reason="INC-42 failover", apply=True)
    records = [r for r in lg.audit_tail(200) if r.get("op") == "reconciled"]
    assert {r["order_id"] for r in records} == {
        "MISSING",
        "RELEASED",
        "CANCELLED",
        "FILLME",
        "QTY",
        "PRICE",
        "DONE-UNKNOWN",
    }
    assert all(r["by"] == "ops-anna" and r["why"] == "INC-42 failover" for r in records)
    du = next(r for r in records if r["order_id"] == "DONE-UNKNOWN")
    assert (du["created"], du["st"], du["fills"], du["account"]) == (1, "filled", ["F-DU"], "A1")
    fm = next(r for r in records if r["order_id"] == "FILLME")
    assert (fm["created"], fm["fills"]) == (0, ["F-NEW"])


def test_a_reconciled_order_is_recorded_over_a_limit_and_flagged(lg: Ledger) -> None:
    # T1's gross budget is 40000.00: the venue holds an order for 45000.00 that
    # the ledger lost. Reconcile records it (the exposure exists) and flags it.
    load(lg)
    assert not lg.reserve(order("BIG", qty="450", price="100")).accepted
    report = lg.reconcile(
        [venue("BIG", qty="450", price="100")], by="ops-anna", reason="lost", apply=True
    )
    assert [(r.order_id, r.reason, r.created) for r in report.repairs] == [("BIG", Reason.OK, True)]
    over = {(row.scope, row.limit_name) for row in report.over}
    assert ("trader:T1", "max_gross_notional") in over
    rows = {(u.scope, u.limit_name): u for u in lg.utilization("trader:T1")}
    assert rows[("trader:T1", "max_gross_notional")].used == 4_500_000
    check = lg.check()
    assert not check.ok
    assert (
        "trader:T1: max_gross_notional used 4500000 > limit 4000000; "
        "1 reconciled order(s) open on it"
    ) in check.breaches
    assert check.reconciled["trader:T1"] == 1
    # Trading on the path is refused by the limits, as for any exposure.
    assert lg.reserve(order("NEXT", qty="1")).reason is Reason.GROSS_LIMIT


def test_a_client_retry_of_a_reconciled_order_replays_it(lg: Ledger) -> None:
    lg.reconcile([venue("LOST", qty="5")], by="ops-anna", apply=True)
    retry = lg.reserve(order("LOST", qty="5"))
    assert retry.accepted and retry.replayed and retry.notional == 50000
    assert agg(lg, "account:A1").ob == 50000
    # A different order under the id is still a clash, not a second reservation.
    assert lg.reserve(order("LOST", qty="6")).reason is Reason.DUPLICATE_ORDER_ID


def test_missing_fills_apply_once_by_fill_id(lg: Ledger) -> None:
    assert lg.reserve(order("O1")).accepted
    records = [venue("O1"), fill("O1", "X1", "4"), fill("O1", "X1", "4")]
    first = lg.reconcile(records, by="ops-anna", apply=True)
    assert [r.fills_applied for r in first.repairs] == [1]
    assert lg.reconcile(records, by="ops-anna", apply=True).ok
    # The fill id is the ledger's own: the fill path sees it as already recorded.
    assert lg.fill("O1", "X1", 4, "100").duplicate
    assert (agg(lg, "account:A1").ob, agg(lg, "account:A1").fb) == (60000, 40000)
    assert lg.check().ok


def test_a_bad_drop_copy_is_refused_naming_the_record_and_changes_nothing(lg: Ledger) -> None:
    assert lg.reserve(order("O1")).accepted
    before = _state(lg)
    cases = [
        ([venue("O1", status="lost")], "record 1: status"),
        ([venue("O1"), {**venue("O2"), "price": 100.5}], "record 2: price"),
        ([venue("O1", qty="-1")], "record 1: qty"),
        ([venue("O1"), venue("O1")], "O1 appears twice"),
        ([{"order_id": "O1"}], "record 1: status"),
        ([fill("bad id", "F")], "record 1: order_id"),
    ]
    for records, message in cases:
        with pytest.raises(InvalidInput, match=message):
            lg.reconcile(records, by="ops-anna", apply=True)
    with pytest.raises(InvalidInput, match="by"):
        lg.reconcile([venue("O1")], by=" ", apply=True)
    assert _state(lg) == before


def test_json_lines_and_csv_examples_say_the_same() -> None:
    jsonl = parse_records(read_drop_copy(ROOT / "examples" / "dropcopy.jsonl"))
    csv = parse_records(read_drop_copy(ROOT / "examples" / "dropcopy.csv"))
    assert jsonl == csv and len(jsonl) == 5


def test_cli_reports_then_applies(lg: Ledger, redis_url: str, tmp_path: Any) -> None:
    assert lg.reserve(order("O1")).accepted
    drop = tmp_path / "drop.csv"
    drop.write_text(
        "order_id,account,trader,strategy,symbol,side,qty,price,status,fill_id\n"
        "O1,A1,T1,S1,XYZ,buy,10,100,cancelled,\n"
        "O2,A1,T1,S1,XYZ,buy,3,100,open,\n"
    )
    runner = CliRunner()
    base = ["--redis-url", redis_url, "reconcile", str(drop), "--by", "ops-anna"]
    shown = runner.invoke(cli, base)
    assert shown.exit_code == 1, shown.output
    assert "open_in_ledger" in shown.output and "missing_order" in shown.output
    assert "--apply repairs them" in shown.output
    applied = runner.invoke(cli, [*base, "--reason", "EOD", "--apply", "--json"])
    assert applied.exit_code == 0, applied.output
    assert '"applied": true' in applied.output
    settled = runner.invoke(cli, base)
    assert settled.exit_code == 0, settled.output
    assert "0 differences" in settled.output
    assert (agg(lg, "account:A1").ob, agg(lg, "account:A1").n) == (30000, 1)
    missing = runner.invoke(
        cli, ["--redis-url", redis_url, "reconcile", "/nonexistent", "--by", "x"]
    )
    assert missing.exit_code == 1 and "cannot read it" in missing.output


def test_a_caller_bound_to_other_firms_sees_and_touches_none_of_this_one(lg: Ledger) -> None:
    assert lg.reserve(order("O1")).accepted
    before = _state(lg)
    records = [venue("O1", status="cancelled"), venue("O2"), fill("O1", "X1")]
    report = lg.reconcile(records, by="ops-other", firm=["F2"], apply=True)
    assert _kinds(report) == {"O1": {"unknown_account"}, "O2": {"unknown_account"}}
    assert report.repairs == [] and _state(lg) == before
    # Named among its firms, the same drop copy is reconciled.
    mine = lg.reconcile(records, by="ops-f1", firm=["F1", "F2"], apply=True)
    assert {r.order_id for r in mine.repairs} == {"O1", "O2"}


_RETENTION_MS = 3 * 86_400_000


def _ttl(lg: Ledger, order_id: str) -> int:
    return int(lg.redis.pttl(lg.keys.order("F1", order_id)))


def test_reconcile_keeps_what_it_opens_and_retains_what_it_closes(lg: Ledger) -> None:
    records = _scenario(lg)
    assert 0 < _ttl(lg, "RELEASED") <= _RETENTION_MS
    report = lg.reconcile(records, by="ops-anna", reason="after failover", apply=True)
    assert all(r.reason is Reason.OK for r in report.repairs)
    # Released in the ledger, open at the venue: open again, so kept for good.
    assert _ttl(lg, "RELEASED") == -1
    assert 0 < _ttl(lg, "CANCELLED") <= _RETENTION_MS
    assert 0 < _ttl(lg, "DONE-UNKNOWN") <= _RETENTION_MS
    assert _ttl(lg, "MISSING") == -1
