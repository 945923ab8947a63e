"""``ledger drill``: against two real gunicorn gateways on a real server, with the policy of
tests/policy/drill.yaml (firm DRILL set aside whole, ACC-CANARY a drill account of ACME)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from gateway.run import launch, stop, wait_ready
from ledger import Ledger, load_policy_file
from ledger.cli import cli
from ledger.facade.views import aggregates
from ledger.store.embedded import free_port
from ledger.store.tokens import Role, TokenStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "policy" / "drill.yaml"


@dataclass
class Deployment:
    url: str
    bases: list[str]
    client: redis.Redis

    def ledger(self) -> Ledger:
        return Ledger(self.client, actor="test")


@pytest.fixture(scope="module")
def deployment(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Two gateway instances (one worker each) on the session's server."""
    url = f"redis://{server.host}:{server.port}/0"
    logs = tmp_path_factory.mktemp("drill-gateways")
    ports = [free_port(), free_port()]
    procs = []
    client = redis.Redis(host=server.host, port=server.port)
    try:
        for port in ports:
            with open(logs / f"{port}.log", "wb") as log:
                procs.append(
                    launch(
                        url,
                        bind=f"127.0.0.1:{port}",
                        workers=1,
                        env={"LEDGER_REDIS_TIMEOUT_MS": "2000"},
                        output=log,
                    )
                )
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for port, base, proc in zip(ports, bases, procs, strict=True):
            try:
                wait_ready(base, proc)
            except RuntimeError as exc:
                pytest.fail(f"{exc}\n{(logs / f'{port}.log').read_text()}")
        yield Deployment(url, bases, client)
    finally:
        stop(procs)
        client.close()


@pytest.fixture
def live(deployment: Deployment) -> tuple[Deployment, str, str]:
    """A flushed server with the drill policy, a fresh AAPL price and tokens."""
    deployment.client.flushall()
    lg = deployment.ledger()
    lg.load_policy(load_policy_file(POLICY), by="test")
    lg.prices.set({"AAPL": "200", "MSFT": "400"}, by="feed-1")
    store = TokenStore(deployment.client)
    return deployment, store.create(Role.ORDER_ENTRY, "drill-bot"), store.create(Role.OPS, "o")


def drill(d: Deployment, token: str, *args: str, gateways: list[str] | None = None) -> Result:
    gw: list[str] = []
    for base in d.bases if gateways is None else gateways:
        gw += ["--gateway", base]
    return CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_DRILL_TOKEN": None}).invoke(
        cli, ["--redis-url", d.url, "drill", *args, *gw, "--token", token, "--by", "ops-1"]
    )


def drill_audits(d: Deployment, firm: str) -> list[dict[str, Any]]:
    return [
        r
        for r in d.ledger().audit_tail(1000)
        if r.get("op") == "drill" and r["stream"] == f"ledger:{{{firm}}}:audit"
    ]


def test_kill_drill_refuses_through_both_gateways_and_lifts_the_kill(
    live: tuple[Deployment, str, str],
) -> None:
    d, token, _ = live
    result = drill(d, token, "kill", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["outcome"] == "held" and doc["scope"] == "account:ACC-CANARY"
    assert [p["gateway"] for p in doc["probes"]] == d.bases
    for p in doc["probes"]:
        assert (p["status"], p["reason"], p["held"]) == (403, "KILL_SWITCH", True)
        assert p["ms"] > 0
    lg = d.ledger()
    assert lg.kills() == []
    # Nothing reserved anywhere: the probes were refused.
    assert all(a.gross == 0 and a.n == 0 for a in aggregates(d.client, lg.keys, "ACME").values())
    tail = lg.audit_tail(1000)
    kills = [r for r in tail if r.get("op") in ("kill", "unkill")]
    assert [(r["op"], r["by"]) for r in kills] == [("kill", "ops-1"), ("unkill", "ops-1")]
    outcomes = [(r["drill"], r["outcome"], r["by"]) for r in drill_audits(d, "ACME")]
    assert outcomes == [("kill", "started", "ops-1"), ("kill", "held", "ops-1")]

    text = drill(d, token, "kill", "--account", "ACC-D", "--scope", "firm:DRILL")
    assert text.exit_code == 0, text.output
    assert text.output.startswith("drill kill ")
    assert ": HELD" in text.output.splitlines()[0]
    assert "KILL_SWITCH  KILL_SWITCH" in text.output


def test_kill_drill_refuses_real_scopes_and_an_existing_kill(
    live: tuple[Deployment, str, str],
) -> None:
    d, token, _ = live
    lg = d.ledger()
    result = drill(d, token, "kill", "--account", "ACC-1")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: account: ACC-1 is not a drill account: set drill: true on it or its "
        "firm in the policy"
    )
    result = drill(d, token, "kill", "--scope", "desk:EQ-CASH")
    assert result.exit_code == 1
    assert "desk:EQ-CASH is not a drill scope of account ACC-CANARY" in result.output
    lg.kill("account:ACC-CANARY", by="ops-2", reason="real")
    result = drill(d, token, "kill")
    assert result.exit_code == 1
    assert "account:ACC-CANARY is already killed (by ops-2)" in result.output
    # The real kill stays.
    assert [k.scope for k in lg.kills()] == ["account:ACC-CANARY"]
    assert drill_audits(d, "ACME") == []


def test_kill_drill_fails_when_a_gateway_does_not_refuse(
    live: tuple[Deployment, str, str],
) -> None:
    d, token, _ = live
    dead = f"http://127.0.0.1:{free_port()}"
    result = drill(d, token, "kill", "--json", gateways=[d.bases[0], dead])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["outcome"] == "failed"
    (ok, down) = doc["probes"]
    assert ok["held"] is True and down["held"] is False and down["status"] is None
    assert d.ledger().kills() == []
    assert drill_audits(d, "ACME")[-1]["outcome"] == "failed"


def test_entitlement_drill_proves_not_entitled_for_each_case(
    live: tuple[Deployment, str, str],
) -> None:
    d, token, _ = live
    result = drill(d, token, "entitlement", "--account", "ACC-D", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    cases = [p["case"] for p in doc["probes"]]
    assert cases == 2 * [
        "trader T-DRILL2 not entitled to ACC-D",
        "strategy DRILL-S2 not entitled to ACC-D",
        "symbol DRILLX not allowed on ACC-D",
        "venue DRILLV not allowed on ACC-D",
    ]
    assert {(p["status"], p["reason"]) for p in doc["probes"]} == {(403, "NOT_ENTITLED")}


def test_collar_drill_proves_price_collar(live: tuple[Deployment, str, str]) -> None:
    d, token, _ = live
    result = drill(d, token, "collar", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [(p["reason"], p["held"]) for p in doc["probes"]] == [("PRICE_COLLAR", True)] * 2
    assert doc["probes"][0]["case"] == "buy AAPL at 204 (reference 200, collar 50 bps)"


def test_collar_drill_needs_a_fresh_reference_price(live: tuple[Deployment, str, str]) -> None:
    d, token, _ = live
    d.client.hdel(d.ledger().keys.prices("ACME"), "AAPL")
    result = drill(d, token, "collar")
    assert result.exit_code == 1
    assert "AAPL has no fresh reference price in firm ACME" in result.output


def test_storm_drill_meets_message_rate_then_cancel_ratio_and_releases_everything(
    live: tuple[Deployment, str, str],
) -> None:
    d, token, _ = live
    result = drill(d, token, "storm", "--account", "ACC-D", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    burst, ratio = doc["probes"]
    assert burst["reason"] == "MESSAGE_RATE" and burst["held"] is True
    assert "MESSAGE_RATE" in burst["note"]
    assert ratio["reason"] == "CANCEL_RATIO" and ratio["held"] is True
    lg = d.ledger()
    drill_nodes = aggregates(d.client, lg.keys, "DRILL")
    assert drill_nodes and all(a.gross == 0 and a.n == 0 for a in drill_nodes.values())
    assert aggregates(d.client, lg.keys, "ACME") == {}
    assert any(n.startswith("released ") for n in doc["notes"])


def test_storm_drill_fails_without_a_message_limit(live: tuple[Deployment, str, str]) -> None:
    d, token, _ = live
    result = drill(d, token, "storm", "--account", "ACC-D2", "--max", "20")
    assert result.exit_code == 1
    assert "FAILED: MESSAGE_RATE: no message limit on the path; nothing stops a storm" in (
        result.output
    )
    drill_nodes = aggregates(d.client, d.ledger().keys, "DRILL")
    assert all(a.n == 0 for a in drill_nodes.values())


def test_storm_drill_needs_a_drill_firm(live: tuple[Deployment, str, str]) -> None:
    d, token, _ = live
    result = drill(d, token, "storm")
    assert result.exit_code == 1
    assert "a storm needs an account of a drill firm" in result.output
    assert "firm:ACME is not a drill firm" in result.output


def test_drill_flags_parse_and_survive_a_load(live: tuple[Deployment, str, str]) -> None:
    d, _, _ = live
    for policy in (load_policy_file(POLICY), d.ledger().policy(refresh=True)):
        assert policy is not None
        flags = {s: n.drill for s, n in policy.nodes.items() if n.kind in ("firm", "account")}
        assert flags == {
            "firm:ACME": False,
            "account:ACC-1": False,
            "account:ACC-CANARY": True,
            "firm:DRILL": True,
            "account:ACC-D": True,
            "account:ACC-D2": True,
        }


def test_storm_drill_refuses_a_burst_too_small_to_prove_anything(
    live: tuple[Deployment, str, str],
) -> None:
    d, token, _ = live
    result = drill(d, token, "storm", "--account", "ACC-D", "--max", "5")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: max_orders: the tightest window (strategy:DRILL-S messages.all.per_second) "
        "admits 5; send at least 6 (--max 6)"
    )
    assert drill_audits(d, "DRILL") == []
