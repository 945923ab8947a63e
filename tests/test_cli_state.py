"""``ledger strategy ...``, ``ledger kill --cancel-open`` and the states in ``ledger status``.

Run through click's CliRunner against the session's real server, with
examples/policy.yaml loaded (strategies MM-1 and STAT-ARB, accounts ACC-1..3).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from click.testing import CliRunner, Result

from ledger import Ledger, Order
from ledger.cli import cli

Run = Callable[..., Result]
CONTROLS = "ledger:{ACME}:controls"
#: 100 AAPL at 187.25 for T-ALICE / MM-1 in ACC-1 (desk EQ-CASH).
O1 = Order("o1", "T-ALICE", "MM-1", "ACC-1", "AAPL", "buy", "100", "187.25")
#: 10 XYZ sold by T-BOB / STAT-ARB in ACC-3 (desk EQ-DERIV).
O2 = Order("o2", "T-BOB", "STAT-ARB", "ACC-3", "XYZ", "sell", "10", "10")


@pytest.fixture
def run(redis_url: str) -> Run:
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})
    return lambda *args: runner.invoke(cli, ["--redis-url", redis_url, *args])


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _auto_disable(ledger: Ledger, scope: str, by: str = "system:fill-throttle") -> None:
    """The entry the fill throttle writes when it trips."""
    record = {
        "st": "disabled",
        "by": by,
        "why": "fill throttle",
        "t": 1_700_000_000_000,
        "auto": 1,
        "cause": "50 fills in 10 s",
    }
    ledger.redis.hset(CONTROLS, f"s|{scope}", msgpack.packb(record))


# -- ledger strategy --------------------------------------------------------------------


def test_disable_reduce_only_and_enable(run: Run, ledger: Ledger) -> None:
    result = run("strategy", "disable", "strategy:MM-1", "--by", "alice", "--reason", "runaway")
    assert result.exit_code == 0, result.output
    assert result.stdout == "set strategy:MM-1 to disabled (by alice: runaway)\n"
    again = run("strategy", "disable", "strategy:MM-1", "--by", "bob", "--reason", "x")
    assert again.stdout == "strategy:MM-1 was already disabled; nothing changed\n"

    doc = _json(
        run(
            "strategy",
            "reduce-only",
            "strategy:MM-1",
            "--by",
            "alice",
            "--reason",
            "unwind",
            "--json",
        )
    )
    assert doc == {
        "op": "reduce_only",
        "scope": "strategy:MM-1",
        "state": "reduce_only",
        "previous": "disabled",
        "already": False,
        "policy_state": "enabled",
        "by": "alice",
        "reason": "unwind",
    }
    assert [s.state for s in ledger.states.list()] == ["reduce_only"]

    result = run("strategy", "enable", "strategy:MM-1", "--by", "bob", "--reason", "done")
    assert result.stdout == "re-enabled strategy:MM-1, was reduce_only (by bob: done)\n"
    assert ledger.states.list() == []
    result = run("strategy", "enable", "strategy:MM-1", "--by", "bob", "--reason", "done")
    assert result.stdout == "strategy:MM-1 had no runtime state; nothing changed\n"


def test_list_shows_the_cause_of_an_automatic_disable(run: Run, ledger: Ledger) -> None:
    assert run("strategy", "list").stdout == "strategy and account states: all enabled\n"
    _auto_disable(ledger, "strategy:STAT-ARB")
    ledger.states.set("account:ACC-2", "reduce_only", by="alice", reason="unwind only")
    lines = run("strategy", "list").stdout.splitlines()
    assert lines[0] == "strategy and account states: 2 not enabled"
    assert lines[1].split() == [
        "SCOPE",
        "STATE",
        "SOURCE",
        "BY",
        "SINCE",
        "AUTO",
        "CAUSE",
        "REASON",
    ]
    assert lines[2].split()[:4] == ["account:ACC-2", "reduce_only", "runtime", "alice"]
    assert lines[3].split()[:3] == ["strategy:STAT-ARB", "disabled", "runtime"]
    assert "system:fill-throttle" in lines[3] and "50 fills in 10 s" in lines[3]
    doc = _json(run("strategy", "list", "--json"))
    auto = {s["scope"]: s for s in doc["states"]}["strategy:STAT-ARB"]
    assert (auto["auto"], auto["cause"], auto["at"]) == (
        True,
        "50 fills in 10 s",
        "2023-11-14T22:13:20Z",
    )


@pytest.mark.parametrize(
    ("by", "message"),
    [
        ("system:fill-throttle", "is a system identity"),
        ("risk-bot", "set automatically by 'risk-bot'"),
    ],
)
def test_enable_refused_for_the_trigger_or_a_system_identity(
    run: Run, ledger: Ledger, by: str, message: str
) -> None:
    _auto_disable(ledger, "strategy:MM-1", by="risk-bot")
    result = run("strategy", "enable", "strategy:MM-1", "--by", by, "--reason", "ok")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert [s.by for s in ledger.states.list()] == ["risk-bot"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["disable", "strategy:NOPE", "--by", "a", "--reason", "r"], "unknown scope strategy:NOPE"),
        (["disable", "desk:EQ-CASH", "--by", "a", "--reason", "r"], "scope: must be strategy:ID"),
        (["disable", "strategy:MM-1", "--by", "a"], "Missing option '--reason'"),
        (["enable", "strategy:MM-1", "--by", "a", "--reason", " "], "reason: must be a non-empty"),
        (["pause", "strategy:MM-1"], "No such command 'pause'"),
    ],
)
def test_bad_input_exits_1_and_changes_nothing(
    run: Run, ledger: Ledger, args: list[str], message: str
) -> None:
    result = run("strategy", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert ledger.redis.exists(CONTROLS) == 0


# -- ledger status --------------------------------------------------------------------


def test_status_shows_automatic_disables_beside_kills(run: Run, ledger: Ledger) -> None:
    ledger.kill("desk:EQ-DERIV", by="ops", reason="feed anomaly")
    _auto_disable(ledger, "strategy:MM-1")
    lines = run("status").stdout.splitlines()
    assert lines[1] == "kill switches: 1 active"
    assert lines[4] == "strategy and account states: 1 not enabled"
    assert lines[6].split()[:6] == [
        "strategy:MM-1",
        "disabled",
        "runtime",
        "system:fill-throttle",
        "2023-11-14T22:13:20Z",
        "auto",
    ]
    doc = _json(run("status", "--json"))
    assert [k["scope"] for k in doc["kills"]] == ["desk:EQ-DERIV"]
    (state,) = doc["states"]
    assert (state["scope"], state["auto"], state["cause"]) == (
        "strategy:MM-1",
        True,
        "50 fills in 10 s",
    )


# -- kill --cancel-open and who may unkill --------------------------------------------------


def test_kill_cancel_open_prints_one_instruction_per_open_order(run: Run, ledger: Ledger) -> None:
    assert ledger.reserve(O1).accepted and ledger.reserve(O2).accepted
    assert ledger.fill("o1", "f1", "30", "187.25").ok
    result = run("kill", "--scope", "firm:ACME", "--by", "bob", "--reason", "halt", "--cancel-open")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["killed firm:ACME (by bob: halt)", "cancel instructions: 2"]
    assert lines[2].split() == [
        "ACTION",
        "ORDER",
        "ACCOUNT",
        "STRATEGY",
        "TRADER",
        "SYMBOL",
        "SIDE",
        "LEAVES",
    ]
    rows = sorted(line.split() for line in lines[3:])
    assert rows == [
        ["cancel", "o1", "ACC-1", "MM-1", "T-ALICE", "AAPL", "buy", "70"],
        ["cancel", "o2", "ACC-3", "STAT-ARB", "T-BOB", "XYZ", "sell", "10"],
    ]


def test_kill_cancel_open_json_skips_orders_closed_since(run: Run, ledger: Ledger) -> None:
    assert ledger.reserve(O1).accepted and ledger.reserve(O2).accepted
    ledger.release("o2", "cancelled")
    doc = _json(
        run("kill", "desk:EQ-CASH", "--by", "bob", "--reason", "runaway", "--cancel-open", "--json")
    )
    assert doc["open_orders"] == ["o1"]
    assert doc["cancels"] == [
        {
            "action": "cancel",
            "order_id": "o1",
            "account": "ACC-1",
            "strategy": "MM-1",
            "trader": "T-ALICE",
            "symbol": "AAPL",
            "side": "buy",
            "leaves_qty": 100,
        }
    ]
    doc = _json(
        run("kill", "desk:EQ-DERIV", "--by", "bob", "--reason", "r", "--cancel-open", "--json")
    )
    assert doc["open_orders"] == [] and doc["cancels"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kill", "--by", "bob", "--reason", "x"], "Missing argument 'SCOPE' (or --scope)"),
        (
            ["kill", "desk:EQ-CASH", "--scope", "desk:EQ-DERIV", "--by", "b", "--reason", "x"],
            "two scopes given",
        ),
    ],
)
def test_kill_scope_given_twice_or_not_at_all(
    run: Run, ledger: Ledger, args: list[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 1 and message in result.stderr
    assert ledger.kills() == []


def test_unkill_by_a_system_identity_exits_1(run: Run, ledger: Ledger) -> None:
    ledger.kill("account:ACC-1", by="bob", reason="check")
    result = run("unkill", "account:ACC-1", "--by", "system:watchdog", "--reason", "ok")
    assert result.exit_code == 1
    assert "is a system identity" in result.stderr and len(result.stderr.splitlines()) == 1
    assert [k.scope for k in ledger.kills()] == ["account:ACC-1"]
    lifted = run("unkill", "--scope", "account:ACC-1", "--by", "carol", "--reason", "ok")
    assert lifted.stdout == "lifted the kill on account:ACC-1 (by carol: ok)\n"
    assert ledger.kills() == []
