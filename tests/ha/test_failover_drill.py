"""``ledger drill failover``: SENTINEL FAILOVER under probes, on a real primary, replica and three
sentinels (tests/ha/conftest.py), probing through the library and a gateway on the Sentinel URL.

The verdict (window, loss) is also checked on a real ledger with answers written by the test,
so that a lost acknowledgement and a long window each fail the drill deterministically.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from werkzeug.serving import make_server

from gateway import create_app
from ledger import Ledger, Order, load_policy_file
from ledger.cli import cli
from ledger.facade.views import aggregates
from ledger.ops.drills.failover import Answer, _failover_report, failover_verdicts
from ledger.ops.drills.probes import _start
from ledger.store.tokens import Role, TokenStore
from tests.ha.conftest import Sentinels

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "policy" / "drill.yaml"


DURABLE = {"LEDGER_DURABLE_REPLICAS": "1", "LEDGER_DURABLE_TIMEOUT_MS": "300"}


def _gateway(sentinels: Sentinels, durable: bool) -> tuple[str, Callable[[], None]]:
    """A gateway on the Sentinel URL, in a thread (it follows the failover as any client)."""
    config = {"REDIS_URL": sentinels.url, "REDIS_TIMEOUT_MS": 1000}
    if durable:
        config |= {"DURABLE_REPLICAS": 1, "DURABLE_TIMEOUT_MS": 300}
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def close() -> None:
        server.shutdown()
        thread.join(timeout=10)

    return f"http://127.0.0.1:{server.server_port}", close


def _drill(url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_DRILL_TOKEN": None, **(env or {})})
    result = runner.invoke(
        cli, ["--redis-url", url, "--timeout", "1", "drill", "failover", "--by", "ops-1", *args]
    )
    return result.exit_code, result.output


def _live(sentinels: Sentinels, durable: bool) -> dict[str, Any]:
    """Run the drill through the library and a gateway; its exit code and JSON report."""
    setup = Ledger.from_url(sentinels.url, timeout_s=5.0)
    setup.load_policy(load_policy_file(POLICY), by="test")
    setup.prices.set({"AAPL": "200", "MSFT": "400"}, by="feed-1")
    token = TokenStore(setup.redis).create(Role.ORDER_ENTRY, "drill-bot")
    sentinels.topo.synced()
    url, close = _gateway(sentinels, durable)
    try:
        code, out = _drill(
            sentinels.url,
            *("--account", "ACC-D2", "--gateway", url, "--token", token),
            *("--max-window", "120", "--timeout", "60", "--json"),
            env=DURABLE if durable else None,
        )
    finally:
        close()
    doc = json.loads(out)
    assert doc["drill"] == "failover", out
    old, new = sentinels.topo.primary.port, sentinels.topo.replicas[0].port
    m = doc["metrics"]
    assert (m["primary_before"], m["primary_after"]) == (f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    assert [p["gateway"] for p in doc["probes"]] == ["library", url]
    return {"code": code, "doc": doc, "new": new, "old": old}


@pytest.mark.slow
def test_with_durable_acknowledgement_the_drill_holds_no_acknowledged_probe_is_lost(
    sentinels: Sentinels,
) -> None:
    run = _live(sentinels, durable=True)
    doc = run["doc"]
    assert run["code"] == 0 and doc["outcome"] == "held", doc
    m = doc["metrics"]
    assert m["lost"] == 0 and m["acknowledged"] > 0 and m["window_ms"] >= 0
    for p in doc["probes"]:
        assert p["held"] is True and p["reason"] == "none lost"
    # On the new primary: the drill's audit records, and no probe left reserving anything.
    with redis.Redis(port=run["new"]) as c:
        lg = Ledger(c, actor="test")
        drills = [r for r in lg.audit_tail(5000) if r.get("op") == "drill"]
        assert [(r["drill"], r["outcome"], r["by"]) for r in drills] == [
            ("failover", "started", "ops-1"),
            ("failover", "held", "ops-1"),
        ]
        assert drills[0]["primary"] == f"127.0.0.1:{run['old']}"
        nodes = aggregates(c, lg.keys, "DRILL")
        assert nodes and all(a.gross == 0 and a.n == 0 for a in nodes.values())


@pytest.mark.slow
def test_without_durable_acknowledgement_the_drill_finds_the_loss_and_fails(
    sentinels: Sentinels,
) -> None:
    # Until the sentinels turn it into a replica, the old primary keeps taking the writes
    # of connections opened before the failover: acknowledged, then gone.
    run = _live(sentinels, durable=False)
    doc = run["doc"]
    assert run["code"] == 1 and doc["outcome"] == "failed"
    assert doc["metrics"]["lost"] > 0
    assert any(p["reason"].endswith(" lost") and not p["held"] for p in doc["probes"])
    with redis.Redis(port=run["new"]) as c:
        lg = Ledger(c, actor="test")
        outcomes = [r["outcome"] for r in lg.audit_tail(5000) if r.get("op") == "drill"]
        assert outcomes[-1] == "failed"


def test_the_failover_drill_needs_a_sentinel_url_and_a_drill_firm(
    sentinels: Sentinels, redis_url: str
) -> None:
    code, out = _drill(redis_url)
    assert code == 1
    assert "the failover drill needs the ledger's redis+sentinel:// URL" in out
    setup = Ledger.from_url(sentinels.url, timeout_s=5.0)
    setup.load_policy(load_policy_file(POLICY), by="test")
    code, out = _drill(sentinels.url, "--account", "ACC-CANARY")
    assert code == 1
    assert "a failover drill needs an account of a drill firm" in out
    assert "firm:ACME is not a drill firm" in out
    code, out = _drill(sentinels.url, "--gateway", "http://127.0.0.1:1")
    assert code == 1 and "--gateway needs --token" in out
    # Nothing was asked of the sentinels: the primary is where it was.
    assert sentinels.primary_port() == sentinels.topo.primary.port


# -- the verdict, on a real ledger with answers the test writes ---------------------------


def _answers(*rows: tuple[str, str, float, str]) -> list[Answer]:
    return [Answer(prober, oid, sent, sent + 0.01, outcome) for prober, oid, sent, outcome in rows]


def test_verdicts_measure_from_the_first_unavailable_probe_to_the_next_acceptance() -> None:
    answers = _answers(
        ("library", "a", 1.0, "accepted"),
        ("library", "b", 10.5, "unavailable"),
        ("library", "c", 11.0, "unavailable"),
        ("library", "d", 12.5, "MESSAGE_RATE"),
        ("library", "e", 13.0, "accepted"),
        ("gw", "f", 1.0, "accepted"),
        ("gw", "g", 11.0, "accepted"),
        ("gw2", "h", 11.0, "unavailable"),
    )
    by = {v.prober: v for v in failover_verdicts(answers, since=10.0, lost=["e"])}
    assert by["library"].window_ms == pytest.approx(2510.0)
    assert (by["library"].sent, by["library"].acknowledged, by["library"].lost) == (5, 2, 1)
    assert by["gw"].window_ms == 0.0 and by["gw"].lost == 0
    assert by["gw2"].window_ms is None  # never accepted again


@pytest.fixture
def drill_ledger(redis_client: redis.Redis) -> Ledger:
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(load_policy_file(POLICY), by="test")
    return lg


def _report(lg: Ledger, answers: list[Answer], max_window_s: float) -> dict[str, object]:
    run, _ = _start(lg, "failover", "ops-1", "ACC-D2")
    run.report.metrics["failover_issued"] = 10.0
    return _failover_report(run, lg, answers, max_window_s).to_dict()


def _reserve(lg: Ledger, oid: str) -> None:
    o = Order(oid, "T-DRILL2", "DRILL-S2", "ACC-D2", "AAPL", "buy", "1", "1")
    lg.prices.set({"AAPL": "1"}, by="feed-1")
    assert lg.reserve(o).accepted


def test_an_acknowledged_probe_the_ledger_no_longer_knows_fails_the_drill(
    drill_ledger: Ledger,
) -> None:
    _reserve(drill_ledger, "kept")
    # "gone" was acknowledged but is not in the ledger: what a lost write looks like.
    answers = _answers(("library", "kept", 9.0, "accepted"), ("library", "gone", 10.2, "accepted"))
    doc = _report(drill_ledger, answers, 30)
    assert doc["outcome"] == "failed"
    assert doc["metrics"]["lost"] == 1 and doc["metrics"]["lost_ids"] == ["gone"]
    (probe,) = doc["probes"]
    assert probe["reason"] == "1 lost" and probe["held"] is False
    # The kept probe was released: nothing stays reserved.
    nodes = aggregates(drill_ledger.redis, drill_ledger.keys, "DRILL")
    assert all(a.n == 0 for a in nodes.values())


def test_a_window_over_the_maximum_fails_the_drill(drill_ledger: Ledger) -> None:
    _reserve(drill_ledger, "late")
    answers = _answers(("library", "x", 10.5, "unavailable"), ("library", "late", 45.0, "accepted"))
    doc = _report(drill_ledger, answers, 30)
    assert doc["outcome"] == "failed"
    (probe,) = doc["probes"]
    assert probe["ms"] == pytest.approx(34510.0) and probe["held"] is False
    assert _report(drill_ledger, answers, 60)["outcome"] == "held"
