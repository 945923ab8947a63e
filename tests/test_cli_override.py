"""``ledger override`` and ``ledger stress`` against the tests' real servers.

The tight policy (tests/helpers.py) is loaded: desk D1 max_gross_notional 50000 USD.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ledger import Ledger
from ledger.cli import cli
from ledger.store.embedded import free_port

Run = Callable[..., Result]
REQUEST = [
    *("override", "request", "--scope", "desk:D1", "--limit", "max_gross_notional"),
    *("--value", "60000", "--for", "30m", "--ticket", "RISK-123", "--by", "alice"),
]

STRESS_ON = ["stress", "on", "--by", "cro", "--reason", "drill", "--scope"]


@pytest.fixture
def run(redis_url: str, lg: Ledger) -> Run:
    """``run(*args)``: the CLI on the test server, tight policy loaded."""
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})

    def invoke(*args: str, url: str = redis_url) -> Result:
        return runner.invoke(cli, ["--redis-url", url, *args], catch_exceptions=False)

    return invoke


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result: Result) -> str:
    assert result.exit_code == 1, result.output
    return result.stderr.strip()


def test_request_and_two_approvals(run: Run, lg: Ledger) -> None:
    asked = run(*REQUEST)
    assert asked.exit_code == 0, asked.output
    assert asked.stdout.splitlines() == [
        "OV-1 pending: max_gross_notional at desk:D1 50000.00 -> 60000.00, approvals 0/2",
        "an increase: two people other than alice must approve OV-1",
    ]
    assert refused(run("override", "approve", "OV-1", "--by", "alice")) == (
        "Error: by: alice requested OV-1; someone else must approve it"
    )
    first = run("override", "approve", "OV-1", "--by", "bob")
    assert first.stdout.strip().endswith("approvals 1/2")
    done = ok_json(run("override", "approve", "OV-1", "--by", "carol", "--json"))
    assert (done["status"], done["approvers"], done["value"]) == (
        "active",
        ["bob", "carol"],
        6_000_000,
    )
    assert done["until_ms"] == done["approved_at_ms"] + 30 * 60_000
    assert lg.overrides.get("OV-1").to_dict() == done


def test_request_json_and_a_decrease(run: Run) -> None:
    args = [*REQUEST[:7], "1000.5", *REQUEST[8:-1], "risk", "--reason", "cut", "--json"]
    doc = ok_json(run(*args))
    assert (doc["status"], doc["direction"], doc["reason"]) == ("active", "decrease", "cut")
    assert doc["value"] == 100_050 and doc["ticket"] == "RISK-123"


def test_reject_cancel_and_list(run: Run) -> None:
    run(*REQUEST)
    run(*REQUEST[:-1], "bea")
    assert "Missing option '--reason'" in refused(run("override", "reject", "OV-1", "--by", "bob"))
    rejected = ok_json(run("override", "reject", "OV-1", "--by", "bob", "--reason", "no", "--json"))
    assert (rejected["status"], rejected["decided_by"]) == ("rejected", "bob")
    assert refused(run("override", "cancel", "OV-2", "--by", "alice")) == (
        "Error: by: only its requester bea may cancel OV-2"
    )
    assert run("override", "cancel", "OV-2", "--by", "bea").exit_code == 0

    listed = ok_json(run("override", "list", "--json"))["overrides"]
    assert [(o["id"], o["status"]) for o in listed] == [("OV-1", "rejected"), ("OV-2", "cancelled")]
    table = run("override", "list").stdout.splitlines()
    assert table[0].split() == [
        "ID",
        "FIRM",
        "SCOPE",
        "LIMIT",
        "POLICY",
        "VALUE",
        "STATUS",
        "APPROVERS",
        "UNTIL",
        "BY",
        "TICKET",
    ]
    assert table[1].split() == [
        "OV-1",
        "F1",
        "desk:D1",
        "max_gross_notional",
        "50000.00",
        "60000.00",
        "rejected",
        "-",
        "-",
        "alice",
        "RISK-123",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["override", "approve", "OV-9", "--by", "bob"], "Error: OV-9: no such override"),
        (["override", "approve", "nine", "--by", "bob"], "must be an override id such as OV-7"),
        ([*REQUEST[:3], "desk:NOPE", *REQUEST[4:]], "Error: unknown scope desk:NOPE"),
        ([*REQUEST[:9], "9h", *REQUEST[10:]], "9h is longer than overrides.max_duration (8h)"),
        ([*REQUEST[:7], "0.001", *REQUEST[8:]], "value: has more than 2 decimal places"),
        ([*STRESS_ON, "firm:F1", "--factor", "2"], "factor: must be greater than 0 and at most 1"),
        ([*STRESS_ON, "desk:NOPE", "--factor", "0.5"], "Error: unknown scope desk:NOPE"),
    ],
)
def test_bad_input_exits_1_with_one_line(run: Run, args: list[str], message: str) -> None:
    error = refused(run(*args))
    assert message in error and "\n" not in error


def test_usage_errors_exit_1(run: Run) -> None:
    assert "Invalid value for '--limit'" in refused(run(*REQUEST[:5], "max_loss", *REQUEST[6:]))
    assert "Missing option '--ticket'" in refused(run(*REQUEST[:10], *REQUEST[12:]))


def test_stress_on_list_off(run: Run) -> None:
    on = run(
        "stress", "on", "--scope", "firm:F1", "--factor", "0.5", "--by", "cro", "--reason", "v"
    )
    assert on.stdout.strip() == "money limits under firm:F1 now scaled by 0.5"
    listed = ok_json(run("stress", "list", "--json"))["stress"]
    assert [(s["scope"], s["factor"], s["by"], s["reason"]) for s in listed] == [
        ("firm:F1", "0.5", "cro", "v")
    ]
    assert run("stress", "list").stdout.splitlines()[1].split()[:4] == [
        "firm:F1",
        "F1",
        "0.5",
        "cro",
    ]
    off = ok_json(
        run("stress", "off", "--scope", "firm:F1", "--by", "cro", "--reason", "c", "--json")
    )
    assert (off["op"], off["previous"], off["already"]) == ("off", "0.5", False)
    again = run("stress", "off", "--scope", "firm:F1", "--by", "cro", "--reason", "c")
    assert again.stdout.strip() == "firm:F1 was not under stress; nothing changed"
    assert run("stress", "list").stdout.strip() == "none"


def test_unavailable_exits_2(run: Run) -> None:
    for args in (["override", "list"], ["stress", "list"]):
        result = run(*args, url=f"redis://127.0.0.1:{free_port()}/0")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("Error: ledger unavailable at redis://127.0.0.1:")
