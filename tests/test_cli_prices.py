"""``ledger prices set|show`` and ``ledger symbol resume`` against the tests' real servers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from ledger import Ledger, parse_policy
from ledger.cli import cli
from ledger.store.embedded import free_port
from tests.helpers import TIGHT

Run = Callable[..., Result]


@pytest.fixture
def run(redis_url: str) -> Run:
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})

    def invoke(*args: str, url: str | None = redis_url) -> Result:
        return runner.invoke(cli, ["--redis-url", url, *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def px(redis_client: redis.Redis) -> Ledger:
    doc = copy.deepcopy(TIGHT)
    doc["reference_prices"] = {"max_age_ms": 5000, "max_jump_pct": "10"}
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(parse_policy(doc, source="tight"), by="test")
    return lg


def _state(lg: Ledger) -> dict[bytes, Any]:
    return {k: lg.redis.dump(k) for k in sorted(lg.redis.scan_iter(count=1000))}


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_set_one_symbol_and_show_it(run: Run, px: Ledger) -> None:
    r = run("prices", "set", "AAPL", "187.25", "--by", "feed-1")
    assert r.exit_code == 0, r.output
    header, row = r.stdout.splitlines()[:2]
    assert header.split() == ["FIRM", "SYMBOL", "PRICE", "JUMP", "STATUS"]
    assert row.split() == ["F1", "AAPL", "187.25", "-", "set"]
    (got,) = px.prices.get(["AAPL"])
    assert got.price == "187.25"
    shown = run("prices", "show")
    assert shown.exit_code == 0
    assert shown.stdout.splitlines()[1].split()[:3] == ["F1", "AAPL", "187.25"]
    assert shown.stdout.splitlines()[1].endswith("ok")


def test_set_pairs_json_reports_the_halt_and_by_defaults_to_cli(run: Run, px: Ledger) -> None:
    assert run("prices", "set", "AAPL=100", "MSFT=50").exit_code == 0
    doc = _json(run("prices", "set", "AAPL=100.5", "MSFT=60", "--json"))
    assert doc["by"] == "cli" and doc["halted"] == ["MSFT"]
    assert [(x["symbol"], x["status"], x["jump_bps"]) for x in doc["results"]] == [
        ("AAPL", "set", 50),
        ("MSFT", "halted", 2000),
    ]
    text = run("prices", "set", "MSFT=61")
    assert text.exit_code == 0 and "already_halted" in text.stdout
    shown = _json(run("prices", "show", "MSFT", "NOPE", "--json"))["prices"]
    assert [(x["symbol"], x["price"], x["halted"]) for x in shown] == [
        ("MSFT", "61", True),
        ("NOPE", None, False),
    ]
    assert shown[0]["halt"]["by"] == "cli" and "20.00%" in shown[0]["halt"]["why"]


def test_symbol_resume_clears_the_halt_with_who_and_why(run: Run, px: Ledger) -> None:
    px.prices.set({"AAPL": "100"}, by="feed-1")
    px.prices.set({"AAPL": "200"}, by="feed-1")
    r = run("symbol", "resume", "AAPL", "--by", "ops-alice", "--reason", "confirmed")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "resumed AAPL in F1 (by ops-alice: confirmed)"
    assert px.prices.get(["AAPL"])[0].halt is None
    (rec,) = [a for a in px.audit_tail(100) if a.get("op") == "resume"]
    assert (rec["by"], rec["why"]) == ("ops-alice", "confirmed")
    again = _json(run("symbol", "resume", "AAPL", "--by", "ops", "--reason", "x", "--json"))
    assert again["already"] is True and again["resumed"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prices", "set", "AAPL", "1.5", "MSFT"], "give SYMBOL PRICE"),
        (["prices", "set", "AAPL=1", "AAPL=2"], "AAPL is given twice"),
        (["prices", "set", "AAPL=-1"], "price of AAPL: must not be negative"),
        (["prices", "set", "A B=1"], "symbol"),
        (["prices", "set", "AAPL=1", "--by", " "], "by: must be a non-empty text"),
        (["prices", "set"], "Missing argument"),
        (["prices", "show", "A B"], "symbol"),
        (["symbol", "resume", "AAPL", "--by", "ops", "--reason", ""], "reason"),
        (["symbol", "resume", "AAPL", "--by", "ops"], "Missing option '--reason'"),
    ],
)
def test_bad_input_exits_1_and_changes_nothing(
    run: Run, px: Ledger, args: list[str], message: str
) -> None:
    px.prices.set({"AAPL": "100"}, by="feed-1")
    px.prices.set({"AAPL": "200"}, by="feed-1")
    before = _state(px)
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert message in r.stderr and "Traceback" not in r.output
    assert _state(px) == before


def test_set_without_any_policy_exits_1(run: Run, redis_client: redis.Redis) -> None:
    r = run("prices", "set", "AAPL", "1")
    assert r.exit_code == 1 and "no firm has a policy" in r.stderr
    assert list(redis_client.scan_iter()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["prices", "set", "AAPL", "1"],
        ["prices", "show"],
        ["symbol", "resume", "AAPL", "--by", "ops", "--reason", "x"],
    ],
)
def test_unreachable_redis_exits_2(run: Run, args: list[str]) -> None:
    r = run(*args, url=f"redis://127.0.0.1:{free_port()}/0")
    assert r.exit_code == 2 and "ledger unavailable" in r.stderr
