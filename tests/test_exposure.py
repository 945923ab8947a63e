"""The exposure report, offline: ceilings of nodes and paths, unguarded paths, the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from ledger.cli import cli
from ledger.policy.exposure import NO_MESSAGE_LIMIT, NO_ORDER_CAP, SHADOW_ONLY, UNGUARDED, analyse
from ledger.policy.model import load_policy_file, parse_policy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "policy.yaml"
DOC: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())


def _doc() -> dict[str, Any]:
    return copy.deepcopy(DOC)


def _path(report: Any, trader: str, strategy: str, account: str) -> Any:
    (found,) = [
        p for p in report.paths if (p.trader, p.strategy, p.account) == (trader, strategy, account)
    ]
    return found


def _node(report: Any, scope: str) -> Any:
    (found,) = [n for n in report.nodes if n.scope == scope]
    return found


def test_example_policy_ceilings() -> None:
    report = analyse(load_policy_file(EXAMPLE), window_ms=60_000)
    assert [(p.trader, p.strategy, p.account) for p in report.paths] == [
        ("T-ALICE", "MM-1", "ACC-1"),
        ("T-BOB", "MM-1", "ACC-2"),
        ("T-BOB", "STAT-ARB", "ACC-3"),
    ]
    alice = _path(report, "T-ALICE", "MM-1", "ACC-1")
    assert (alice.gross.minor, alice.gross.source) == (
        2_000_000_00,
        "trader:T-ALICE max_gross_notional",
    )
    # Net is never more than gross.
    assert alice.net.minor == 2_000_000_00
    assert (alice.order_notional.minor, alice.order_notional.source) == (
        1_000_000_00,
        "account:ACC-1 max_order_notional",
    )
    # MM-1: 50/s and 300/10s; in a minute the 10 s window binds: 6 x 300.
    assert alice.messages.minor == 1800
    assert alice.notional_in_window == 1800 * 1_000_000_00
    assert alice.flags == ()
    # T-BOB's net limit is shadow only: flagged, and not taken as a ceiling.
    bob = _path(report, "T-BOB", "STAT-ARB", "ACC-3")
    assert bob.flags == (SHADOW_ONLY,)
    assert bob.net.source == "trader:T-BOB max_gross_notional"
    assert report.unguarded == []


def test_node_ceilings_share_what_bounds_them() -> None:
    report = analyse(load_policy_file(EXAMPLE))
    # MM-1 trades ACC-1 and ACC-2, both under EQ-CASH: together they hold at most
    # the desk's 10m, not 10m each.
    mm1 = _node(report, "strategy:MM-1")
    assert (mm1.gross.minor, mm1.gross.source) == (
        10_000_000_00,
        "desk:EQ-CASH max_gross_notional",
    )
    # The firm's own 50m is looser than what its desks can hold between them (10m + 5m).
    firm = _node(report, "firm:ACME")
    assert (firm.gross.minor, firm.gross.source) == (15_000_000_00, "accounts of firm:ACME")
    acc3 = _node(report, "account:ACC-3")
    assert (acc3.net.minor, acc3.net.source) == (2_000_000_00, "desk:EQ-DERIV max_net_notional")


def test_a_path_with_no_ceiling_is_unguarded() -> None:
    doc = _doc()
    doc["firms"][0]["limits"] = {}
    doc["firms"][0]["desks"][0]["limits"] = {"max_open_orders": 500}
    doc["traders"][0]["limits"] = {}
    doc["strategies"][0]["limits"] = {}
    report = analyse(parse_policy(doc))
    alice = _path(report, "T-ALICE", "MM-1", "ACC-1")
    assert alice.gross.minor is None and alice.net.minor is None
    assert alice.flags == (UNGUARDED, NO_MESSAGE_LIMIT)
    assert alice.notional_in_window is None
    assert report.unguarded == [alice]
    # The same path with a net limit only on its strategy is bounded.
    doc["strategies"][0]["limits"] = {"max_net_notional": "100"}
    alice = _path(analyse(parse_policy(doc)), "T-ALICE", "MM-1", "ACC-1")
    assert UNGUARDED not in alice.flags
    assert alice.net.source == "strategy:MM-1 max_net_notional"


def test_a_shadow_limit_is_no_ceiling() -> None:
    doc = _doc()
    doc["firms"][0]["limits"] = {}
    doc["firms"][0]["desks"][0]["limits"] = {}
    doc["traders"][0]["limits"] = {"max_gross_notional": "1000", "shadow": True}
    alice = _path(analyse(parse_policy(doc)), "T-ALICE", "MM-1", "ACC-1")
    assert alice.flags[0] == UNGUARDED
    assert SHADOW_ONLY in alice.flags


def test_tier_caps_bound_the_order_notional() -> None:
    doc = _doc()
    for desk in doc["firms"][0]["desks"]:
        for account in desk["accounts"]:
            account["limits"] = {"max_order_qty": 100}
    doc["reference_prices"] = {"max_age_ms": 5000, "max_jump_pct": "10"}
    doc["tiers"] = {
        "liquid": {"price_collar_bps": 100, "max_order_notional": "500000", "symbols": ["AAPL"]},
        "small": {"price_collar_bps": 300, "max_order_notional": "50000", "symbols": ["XYZ"]},
    }
    alice = _path(analyse(parse_policy(doc)), "T-ALICE", "MM-1", "ACC-1")
    # An order in the loosest tier meets only that tier's cap.
    assert (alice.order_notional.minor, alice.order_notional.source) == (500_000_00, "tier:liquid")
    del doc["tiers"]["small"]["max_order_notional"]
    alice = _path(analyse(parse_policy(doc)), "T-ALICE", "MM-1", "ACC-1")
    assert alice.order_notional.minor is None
    assert NO_ORDER_CAP in alice.flags


def _write(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_cli_table_and_json() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["policy", "exposure", str(EXAMPLE), "--window", "10s"])
    assert result.exit_code == 0, result.output
    assert "3 paths (trader -> strategy -> account), 0 unguarded" in result.output
    assert "in 10s" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("T-ALICE"))
    assert row.split()[-3:] == ["300", "300000000.00", "-"]
    result = runner.invoke(cli, ["policy", "exposure", str(EXAMPLE), "--json"])
    doc = json.loads(result.stdout)
    assert doc["window_ms"] == 60_000
    assert doc["summary"]["paths"] == 3 and doc["summary"]["unguarded"] == 0
    assert doc["paths"][0]["gross"] == {
        "ceiling": "2000000.00",
        "source": "trader:T-ALICE max_gross_notional",
    }


def test_cli_require_bounded_fails_on_an_unguarded_path(tmp_path: Path) -> None:
    doc = _doc()
    doc["firms"][0]["limits"] = {}
    doc["firms"][0]["desks"][0]["limits"] = {}
    doc["traders"][0]["limits"] = {}
    file = _write(tmp_path, doc)
    runner = CliRunner()
    assert runner.invoke(cli, ["policy", "exposure", file]).exit_code == 0
    result = runner.invoke(cli, ["policy", "exposure", file, "--require-bounded"])
    assert result.exit_code == 1
    assert "unguarded paths: T-ALICE/MM-1/ACC-1" in result.output
    # The example is bounded everywhere.
    assert (
        runner.invoke(cli, ["policy", "exposure", str(EXAMPLE), "--require-bounded"]).exit_code == 0
    )


@pytest.mark.parametrize("window", ["0s", "10", "soon"])
def test_cli_bad_window(window: str) -> None:
    result = CliRunner().invoke(cli, ["policy", "exposure", str(EXAMPLE), "--window", window])
    assert result.exit_code == 1
    assert "--window" in result.output and "positive duration" in result.output


def test_cli_invalid_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 2\n")
    result = CliRunner().invoke(cli, ["policy", "exposure", str(path)])
    assert result.exit_code == 1
    assert "version: must be 1" in result.output
