"""``check`` and ``utilization`` measure against the limit in force, as reserve does.

The issue's scenario: an approved override raises desk D1's gross limit from
1,000,000.00 to 1,500,000.00 and 1,100,000.00 is used. That is no breach and
73.3 % used, with the policy's 1,000,000.00 shown beside it. Stress halving
a limit is the other way round. Each is checked against what reserve itself
enforces, so the views cannot drift from lua/includes/controls.lua.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger import Ledger, Order, Reason, parse_policy
from ledger.cli import cli
from ledger.facade.effective import STRESSED
from ledger.facade.results import UtilizationRow

ROOT = Path(__file__).resolve().parent.parent
MILLION = 100_000_000  # 1,000,000.00 in cents

DOC: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": 2,
    "firms": [
        {
            "id": "F1",
            "limits": {"max_gross_notional": "10000000"},
            "desks": [
                {
                    "id": "D1",
                    "limits": {"max_gross_notional": "1000000", "max_open_orders": 10},
                    "accounts": [{"id": "A1"}],
                },
                {"id": "D2", "accounts": [{"id": "A2"}]},
            ],
        }
    ],
    "strategies": [{"id": "S1", "accounts": ["A1", "A2"]}],
    "traders": [
        {
            "id": "T1",
            "accounts": ["A1", "A2"],
            "strategies": ["S1"],
            "limits": {"max_gross_notional": "3000000"},
        }
    ],
}


def _buy(lg: Ledger, oid: str, qty: int, account: str = "A1") -> Any:
    # Price 10,000.00: qty 1 is 10,000.00 of exposure.
    return lg.reserve(Order(oid, "T1", "S1", account, "XYZ", "buy", str(qty), "10000"))


@pytest.fixture
def lg2(ledger: Ledger) -> Ledger:
    ledger.load_policy(parse_policy(DOC, source="effective"), by="test")
    return ledger


def _row(lg: Ledger, scope: str, name: str = "max_gross_notional") -> UtilizationRow:
    (row,) = [r for r in lg.utilization(scope) if r.scope == scope and r.limit_name == name]
    return row


@pytest.fixture
def raised(lg2: Ledger) -> Ledger:
    """D1 raised to 1,500,000.00 by an approved override, 1,100,000.00 used."""
    assert _buy(lg2, "o1", 90).accepted  # 900,000.00
    ov = lg2.overrides.request(
        "desk:D1", "max_gross_notional", "1500000", duration="30m", ticket="RISK-1", by="alice"
    )
    lg2.overrides.approve(ov.id, by="bob")
    lg2.overrides.approve(ov.id, by="carol")
    d = _buy(lg2, "o2", 20)  # 200,000.00, over the policy's 1,000,000.00
    assert d.accepted, d
    return lg2


def test_check_passes_under_an_approved_increase(raised: Ledger) -> None:
    report = raised.check()
    assert report.ok, report.breaches
    assert report.over == []


def test_utilization_is_against_the_override_with_the_policy_beside_it(raised: Ledger) -> None:
    row = _row(raised, "desk:D1")
    assert (row.used, row.limit, row.policy_limit) == (
        110 * MILLION // 100,
        150 * MILLION // 100,
        MILLION,
    )
    assert round(row.percent, 1) == 73.3 and row.override == "OV-1" and row.factor is None
    d = row.to_dict()
    assert (d["limit"], d["policy_limit"], d["override"]) == (150_000_000, 100_000_000, "OV-1")
    # Reserve enforces the same figure: 400,000.00 more fits exactly, a cent more does not.
    assert _buy(raised, "o3", 40).accepted
    over = raised.reserve(Order("o4", "T1", "S1", "A1", "XYZ", "buy", "1", "0.01"))
    assert over.reason is Reason.GROSS_LIMIT and over.scope == "desk:D1"
    assert over.limit == _row(raised, "desk:D1").limit


def test_an_unchanged_limit_shows_the_policy_value_as_in_force(raised: Ledger) -> None:
    row = _row(raised, "firm:F1")
    assert row.limit == row.policy_limit == 10 * MILLION and row.override is None
    assert row.to_dict()["policy_limit"] == row.limit


def test_stress_halving_a_limit_is_a_breach_where_usage_exceeds_it(lg2: Ledger) -> None:
    assert _buy(lg2, "o1", 60).accepted  # 600,000.00 of D1's 1,000,000.00
    assert lg2.check().ok
    lg2.stress.on("firm:F1", "0.5", by="risk-1", reason="volatile open")
    row = _row(lg2, "desk:D1")
    assert (row.limit, row.policy_limit, row.factor) == (MILLION // 2, MILLION, 500_000)
    assert row.percent == 120.0
    report = lg2.check()
    assert not report.ok
    assert report.breaches == [
        f"desk:D1: max_gross_notional used {60 * MILLION // 100} > limit {MILLION // 2}"
        f" (policy {MILLION}; stress 0.5)"
    ]
    (over,) = report.over
    assert (over.scope, over.limit, over.policy_limit) == ("desk:D1", MILLION // 2, MILLION)
    # Reserve refuses against the same halved limit.
    d = _buy(lg2, "o2", 1)
    assert d.reason is Reason.GROSS_LIMIT and (d.scope, d.limit) == ("desk:D1", row.limit)
    # A count limit is not scaled.
    assert _row(lg2, "desk:D1", "max_open_orders").limit == 10


def test_a_spanning_trader_meets_only_the_stress_on_every_path(lg2: Ledger) -> None:
    lg2.stress.on("desk:D1", "0.5", by="risk-1", reason="desk only")
    # T1 trades D1 and D2: D1's factor is not on every path, so not in T1's figure.
    assert _row(lg2, "trader:T1").limit == 3 * MILLION
    lg2.stress.on("trader:T1", "0.25", by="risk-1", reason="trader")
    row = _row(lg2, "trader:T1")
    assert (row.limit, row.policy_limit, row.factor) == (3 * MILLION // 4, 3 * MILLION, 250_000)


def test_the_stressed_limits_are_those_of_the_reserve_script() -> None:
    text = (ROOT / "lua" / "includes" / "controls.lua").read_text()
    listed = re.search(r"local STRESSED = \{([^}]*)\}", text)
    assert listed is not None
    assert set(re.findall(r"'([a-z_]+)'", listed.group(1))) == STRESSED


def _cli(redis_url: str, *args: str) -> Any:
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})
    return runner.invoke(cli, ["--redis-url", redis_url, *args], catch_exceptions=False)


def test_the_cli_check_and_utilization_use_the_limit_in_force(
    raised: Ledger, redis_url: str
) -> None:
    result = _cli(redis_url, "check")
    assert result.exit_code == 0, result.output
    result = _cli(redis_url, "utilization", "desk:D1", "--json")
    assert result.exit_code == 0, result.output
    (row,) = [
        r
        for r in json.loads(result.output)["rows"]
        if (r["scope"], r["limit_name"]) == ("desk:D1", "max_gross_notional")
    ]
    assert (row["limit_major"], row["policy_limit_major"], row["override"]) == (
        "1500000.00",
        "1000000.00",
        "OV-1",
    )
    table = _cli(redis_url, "utilization", "desk:D1").output
    line = next(x for x in table.splitlines() if x.startswith("desk:D1") and "gross" in x)
    assert "1500000.00" in line and "73.3%" in line and "1000000.00 (OV-1)" in line


def test_the_cli_check_names_the_policy_value_of_a_stressed_breach(
    lg2: Ledger, redis_url: str
) -> None:
    assert _buy(lg2, "o1", 60).accepted
    lg2.stress.on("desk:D1", "0.5", by="risk-1", reason="drill")
    result = _cli(redis_url, "check", "--json")
    assert result.exit_code == 1
    (over,) = json.loads(result.output)["over"]
    assert (over["limit"], over["policy_limit"], over["factor"]) == (MILLION // 2, MILLION, "0.5")
