"""``/metrics`` exports the ledger's state: utilization, kills, halts, states, stale prices,
archive lag and replication, read from a real server (the fake clock moves its time)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from gateway import create_app, get_tokens
from gateway.run import launch, stop, wait_ready
from ledger import Ledger
from ledger.policy.model import parse_policy
from ledger.store.embedded import free_port
from ledger.store.tokens import Role, TokenStore
from tests.fakeclock.plugin import Clock
from tests.gateway.conftest import ORDER

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_900_000_000_000

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def monitoring_token(app: Flask) -> str:
    """A ``monitoring`` token in the app's Redis, made on first use: the gauges need one."""
    token: str | None = app.config.get("TEST_MONITORING_TOKEN")
    if token is None:
        with app.app_context():
            token = get_tokens().create(Role.MONITORING, "prometheus-test")
        app.config["TEST_MONITORING_TOKEN"] = token
    return token


def scrape(client: FlaskClient, token: str | None = None) -> Samples:
    """What a scrape with a monitoring token gets (``token``, or one made for the app)."""
    token = monitoring_token(client.application) if token is None else token
    resp = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    return parse(resp.data.decode())


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"series {key} exported twice"
            out[key] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def limit(samples: Samples, name: str, scope: str, lim: str, shadow: str = "false") -> float | None:
    return value(samples, name, firm="ACME", scope=scope, limit=lim, shadow=shadow)


def tiered_policy() -> Any:
    doc = yaml.safe_load((ROOT / "examples" / "policy.yaml").read_text())
    doc["reference_prices"] = {"max_age_ms": 5000, "max_jump_pct": "10"}
    doc["tiers"] = {"largecap": {"price_collar_bps": 500, "symbols": ["AAPL", "MSFT"]}}
    return parse_policy(doc, source="tiered")


@pytest.fixture
def clocked(clock: Clock) -> tuple[Clock, FlaskClient, dict[str, str]]:
    lg = clock.ledger
    lg.load_policy(tiered_policy(), by="test")
    store = TokenStore(clock.redis)
    tokens = {
        "oe": store.create(Role.ORDER_ENTRY, "oe-1"),
        "ops": store.create(Role.OPS, "ops-1"),
    }
    app = create_app(
        {
            "REDIS_URL": clock.server.url,
            "REDIS_TIMEOUT_MS": 2000,
            "TESTING": True,
            "METRICS_CACHE_MS": 0,
        }
    )
    return clock, app.test_client(), tokens


def test_metrics_show_orders_kills_states_halts_and_stale_prices(
    clocked: tuple[Clock, FlaskClient, dict[str, str]],
) -> None:
    clock, client, tokens = clocked
    lg = clock.ledger
    oe = {"Authorization": f"Bearer {tokens['oe']}"}
    ops = {"Authorization": f"Bearer {tokens['ops']}"}
    clock.set_ms(T0)
    lg.prices.set({"AAPL": "187.25"}, by="feed-1")
    clock.set_ms(T0 + 1000)
    for i in range(3):
        resp = client.post("/v1/orders", json={**ORDER, "order_id": f"o{i}"}, headers=oe)
        assert resp.status_code == 201, resp.json
    resp = client.post("/v1/kill", json={"scope": "desk:EQ-DERIV", "reason": "drill"}, headers=ops)
    assert resp.status_code == 200
    bob = {**ORDER, "order_id": "b1", "trader": "T-BOB", "strategy": "STAT-ARB"}
    resp = client.post("/v1/orders", json={**bob, "account": "ACC-3"}, headers=oe)
    assert resp.status_code == 403 and resp.json["reason"] == "KILL_SWITCH"

    m = scrape(client)
    assert value(m, "ledger_up") == 1
    notional = 3 * 1872500
    assert limit(m, "ledger_limit_used", "trader:T-ALICE", "max_gross_notional") == notional
    assert limit(m, "ledger_limit_in_force", "trader:T-ALICE", "max_gross_notional") == 200000000
    assert limit(m, "ledger_limit_utilization_ratio", "trader:T-ALICE", "max_gross_notional") == (
        pytest.approx(notional / 200000000)
    )
    assert limit(m, "ledger_limit_used", "desk:EQ-CASH", "max_open_orders") == 3
    assert limit(m, "ledger_limit_in_force", "desk:EQ-CASH", "max_open_orders") == 500
    # Message-window fill: three new orders this second and this 10 s, of 50 and 300.
    assert limit(m, "ledger_limit_used", "strategy:MM-1", "messages.all.per_second") == 3
    assert limit(m, "ledger_limit_in_force", "strategy:MM-1", "messages.all.per_10s") == 300
    # T-BOB's net limit is shadow: labelled so, so an alert can leave it out.
    assert limit(m, "ledger_limit_used", "trader:T-BOB", "max_net_notional", "true") == 0
    assert (
        value(m, "ledger_kill_switch_active", firm="ACME", scope="desk:EQ-DERIV", auto="false") == 1
    )
    assert value(m, "ledger_kill_switches_active") == 1
    # The reject by reason comes from the decisions counter.
    assert (
        value(
            m,
            "ledger_gateway_decisions_total",
            op="reserve",
            result="rejected",
            reason="KILL_SWITCH",
        )
        == 1
    )
    # Fresh price: 1 s old, limit 5 s.
    assert value(m, "ledger_reference_price_age_seconds", firm="ACME", symbol="AAPL") == 1.0
    assert value(m, "ledger_reference_price_stale", firm="ACME", symbol="AAPL") == 0
    assert value(m, "ledger_reference_price_stale", firm="ACME", symbol="MSFT") == 1
    assert value(m, "ledger_reference_price_age_seconds", firm="ACME", symbol="MSFT") is None
    assert value(m, "ledger_reference_price_max_age_seconds", firm="ACME") == 5.0
    assert value(m, "ledger_redis_role", role="primary") == 1
    assert value(m, "ledger_redis_connected_replicas") == 0

    # Later: the price is old, a stress halves the firm's money limits, a strategy is
    # disabled, a price jump halts a symbol, and the per-second window has rolled.
    lg.stress.on("firm:ACME", "0.5", by="risk-1", reason="volatile open")
    lg.states.set("strategy:STAT-ARB", "disabled", by="ops-1", reason="drill")
    clock.set_ms(T0 + 6001)
    lg.prices.set({"MSFT": "400"}, by="feed-1")
    lg.prices.set({"MSFT": "500"}, by="feed-1")
    m = scrape(client)
    assert value(m, "ledger_reference_price_age_seconds", firm="ACME", symbol="AAPL") == 6.001
    assert value(m, "ledger_reference_price_stale", firm="ACME", symbol="AAPL") == 1
    assert value(m, "ledger_reference_price_stale", firm="ACME", symbol="MSFT") == 0
    assert value(m, "ledger_symbol_halted", firm="ACME", symbol="MSFT") == 1
    assert value(m, "ledger_symbol_halted", firm="ACME", symbol="AAPL") is None
    assert limit(m, "ledger_limit_in_force", "desk:EQ-CASH", "max_gross_notional") == 500000000
    assert limit(m, "ledger_limit_policy", "desk:EQ-CASH", "max_gross_notional") == 1000000000
    assert limit(m, "ledger_limit_in_force", "trader:T-ALICE", "max_gross_notional") == 100000000
    # Counts are not stressed.
    assert limit(m, "ledger_limit_in_force", "desk:EQ-CASH", "max_open_orders") == 500
    assert limit(m, "ledger_limit_used", "strategy:MM-1", "messages.all.per_second") == 0
    assert limit(m, "ledger_limit_used", "strategy:MM-1", "messages.all.per_10s") == 3
    assert (
        value(
            m,
            "ledger_scope_state",
            firm="ACME",
            scope="strategy:STAT-ARB",
            state="disabled",
            source="runtime",
        )
        == 1
    )

    client.delete("/v1/kill", json={"scope": "desk:EQ-DERIV", "reason": "done"}, headers=ops)
    m = scrape(client)
    assert value(m, "ledger_kill_switches_active") == 0
    assert not [k for k in m if k[0] == "ledger_kill_switch_active"]


def test_an_override_in_force_is_the_limit_until_it_lapses(clock: Clock) -> None:
    lg = clock.ledger
    lg.load_policy(tiered_policy(), by="test")
    app = create_app({"REDIS_URL": clock.server.url, "TESTING": True, "METRICS_CACHE_MS": 0})
    client = app.test_client()
    clock.set_ms(T0)
    lg.overrides.request(
        "desk:EQ-CASH", "max_open_orders", "100", duration="30m", ticket="R-1", by="alice"
    )
    m = scrape(client)
    assert limit(m, "ledger_limit_in_force", "desk:EQ-CASH", "max_open_orders") == 100
    assert limit(m, "ledger_limit_policy", "desk:EQ-CASH", "max_open_orders") == 500
    clock.set_ms(T0 + 30 * 60_000)
    m = scrape(client)
    assert limit(m, "ledger_limit_in_force", "desk:EQ-CASH", "max_open_orders") == 500


def test_the_limit_in_force_is_the_utilization_limit_of_every_node(clock: Clock) -> None:
    """One rule for the gauge and ``utilization``: a strategy spanning desks under a
    stressed desk, one always through it, and overrides in force."""
    lg = clock.ledger
    doc = yaml.safe_load((ROOT / "examples" / "policy.yaml").read_text())
    # SPREAD trades ACC-2 (desk EQ-CASH) and ACC-3 (desk EQ-DERIV), as T-BOB does.
    doc["strategies"].append(
        {
            "id": "SPREAD",
            "accounts": ["ACC-2", "ACC-3"],
            "limits": {"max_gross_notional": "4000000"},
        }
    )
    lg.load_policy(parse_policy(doc, source="spanning"), by="test")
    app = create_app({"REDIS_URL": clock.server.url, "TESTING": True, "METRICS_CACHE_MS": 0})
    clock.set_ms(T0)
    lg.stress.on("desk:EQ-DERIV", "0.5", by="risk-1", reason="desk only")
    for scope, value_ in (("desk:EQ-CASH", "8000000"), ("strategy:STAT-ARB", "2000000")):
        lg.overrides.request(
            scope, "max_gross_notional", value_, duration="30m", ticket="R-1", by="alice"
        )
    m = scrape(app.test_client())
    rows = lg.utilization("firm:ACME")
    gauges = {
        (dict(labels)["scope"], dict(labels)["limit"]): v
        for (name, labels), v in m.items()
        if name == "ledger_limit_in_force"
    }
    assert gauges == {(r.scope, r.limit_name): r.limit for r in rows}
    for r in rows:
        shadow = "true" if r.shadow else "false"
        policy = r.to_dict()["policy_limit"]
        assert limit(m, "ledger_limit_policy", r.scope, r.limit_name, shadow) == policy
        assert limit(m, "ledger_limit_used", r.scope, r.limit_name, shadow) == r.used
    # STAT-ARB trades only through EQ-DERIV: its override, halved; SPREAD and T-BOB do
    # not always go through EQ-DERIV, so its factor is not theirs; EQ-CASH is overridden.
    gross = "max_gross_notional"
    assert gauges["strategy:STAT-ARB", gross] == 100000000
    assert gauges["strategy:SPREAD", gross] == 400000000
    assert gauges["trader:T-BOB", gross] == 150000000
    assert gauges["desk:EQ-DERIV", gross] == 250000000
    assert gauges["desk:EQ-CASH", gross] == 800000000


def test_archive_lag_counts_what_the_archive_group_has_not_acknowledged(
    app: Flask, client: FlaskClient, ledger: Ledger, redis_client: redis.Redis
) -> None:
    app.extensions["ledger_metrics"]._cache_s = 0
    # No archive group anywhere: no series at all.
    assert not [k for k in scrape(client) if k[0] == "ledger_audit_archive_lag_records"]
    stream = ledger.keys.audit("ACME")
    for i in range(4):
        ledger.kill("trader:T-BOB", by="ops-1", reason=f"k{i}")
        ledger.unkill("trader:T-BOB", by="ops-1", reason=f"u{i}")
    redis_client.xgroup_create(stream, "archive", id="0")
    total = redis_client.xlen(stream)
    assert value(scrape(client), "ledger_audit_archive_lag_records", stream="ACME") == total
    # Three delivered, one of them acknowledged: the other two still count.
    read = redis_client.xreadgroup("archive", "a1", {stream: ">"}, count=3)
    redis_client.xack(stream, "archive", read[0][1][0][0])
    m = scrape(client)
    assert value(m, "ledger_audit_archive_lag_records", stream="ACME") == total - 1
    assert value(m, "ledger_audit_archive_lag_records", stream="global") is None


def test_one_scrape_is_a_bounded_read_without_scan(
    app: Flask, client: FlaskClient, ledger: Ledger, redis_client: redis.Redis
) -> None:
    app.extensions["ledger_metrics"]._cache_s = 0
    # Token lookups not cached, so the count below does not depend on when the
    # token cache's subscription is confirmed.
    app.config["TOKEN_CACHE_MS"] = 0
    scrape(client)  # connects and reads the policy once
    redis_client.config_resetstat()
    scrape(client)
    stats = redis_client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}
    calls.pop("config|resetstat", None)
    assert "scan" not in calls and "keys" not in calls
    # The scraper's token: one HGET. Round trip 1: 5 reads and the global stream's 2;
    # round trip 2: 6 per firm (one) and TIME.
    assert sum(calls.values()) == 1 + 7 + 6 + 1, calls


def test_a_cached_snapshot_is_reused_within_the_cache_time(
    app: Flask, client: FlaskClient, ledger: Ledger, auth: Callable[[str], dict[str, str]]
) -> None:
    app.extensions["ledger_metrics"]._cache_s = 3600
    assert limit(scrape(client), "ledger_limit_used", "desk:EQ-CASH", "max_open_orders") == 0
    assert client.post("/v1/orders", json=ORDER, headers=auth("order-entry")).status_code == 201
    assert limit(scrape(client), "ledger_limit_used", "desk:EQ-CASH", "max_open_orders") == 0
    app.extensions["ledger_metrics"]._cache_s = 0
    assert limit(scrape(client), "ledger_limit_used", "desk:EQ-CASH", "max_open_orders") == 1


def test_ledger_down_is_ledger_up_zero_and_no_stale_gauges() -> None:
    """The token cannot be checked either: ``ledger_up 0`` and no other ledger series."""
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "REDIS_TIMEOUT_MS": 200})
    m = scrape(app.test_client(), token="llt_unchecked")
    assert value(m, "ledger_up") == 0
    assert not [
        k
        for k in m
        if k[0].startswith("ledger_")
        and k[0] != "ledger_up"
        and not k[0].startswith("ledger_gateway_")
    ]
    # Without a token: no ledger series at all, not even ledger_up.
    anonymous = parse(app.test_client().get("/metrics").text)
    assert not [k for k in anonymous if not k[0].startswith("ledger_gateway_")]


def test_cache_setting_is_checked() -> None:
    with pytest.raises(
        ValueError, match="LEDGER_METRICS_CACHE_MS must be an integer of at least 0"
    ):
        create_app({"METRICS_CACHE_MS": -1})


@pytest.mark.slow
def test_gunicorn_workers_do_not_add_up_the_ledger_gauges(
    ledger: Ledger, redis_url: str, tmp_path: Path
) -> None:
    """Three workers, each scraped in turn: every scrape shows the ledger's value, not a sum."""
    from tests.gateway.test_e2e import http

    token = TokenStore(ledger.redis).create(Role.ORDER_ENTRY, "oe-mp")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "gunicorn.log", "wb") as log:
        proc = launch(
            redis_url,
            bind=f"127.0.0.1:{port}",
            workers=3,
            env={"LEDGER_REDIS_TIMEOUT_MS": "2000", "LEDGER_METRICS_CACHE_MS": "0"},
            output=log,
        )
    try:
        try:
            wait_ready(base, proc)
        except RuntimeError as exc:
            pytest.fail(f"{exc}\n{(tmp_path / 'gunicorn.log').read_text()}")
        for i in range(4):
            status, _ = http("POST", f"{base}/v1/orders", token, {**ORDER, "order_id": f"m{i}"})
            assert status == 201
        scraper = TokenStore(ledger.redis).create(Role.MONITORING, "prometheus-mp")
        for _ in range(6):
            status, text = http("GET", f"{base}/metrics", scraper)
            assert status == 200
            m = parse(text)
            assert limit(m, "ledger_limit_used", "desk:EQ-CASH", "max_open_orders") == 4
            assert value(m, "ledger_up") == 1
            # The request counters are still summed over the workers.
            assert (
                value(
                    m,
                    "ledger_gateway_decisions_total",
                    op="reserve",
                    result="accepted",
                    reason="OK",
                )
                == 4
            )
    finally:
        stop([proc])


def test_replication_state_of_a_primary_and_its_replica(
    server: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """A real replica of the session's server: the primary reports it, the replica its link."""
    port = free_port()
    replica = subprocess.Popen(
        [server.executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(tmp_path)]
        + ["--replicaof", server.host, str(server.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    primary = create_app(
        {"REDIS_URL": f"redis://{server.host}:{server.port}/0", "METRICS_CACHE_MS": 0}
    )
    secondary = create_app({"REDIS_URL": f"redis://127.0.0.1:{port}/0", "METRICS_CACHE_MS": 0})
    name = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            m = scrape(primary.test_client())
            if value(m, "ledger_redis_connected_replicas") == 1:
                break
            assert time.monotonic() < deadline, "the replica did not connect"
            time.sleep(0.1)
        assert value(m, "ledger_redis_role", role="primary") == 1
        assert value(m, "ledger_redis_replica_lag_seconds", replica=name) is not None
        assert value(m, "ledger_redis_replica_behind_bytes", replica=name) is not None
        # The primary's token, once replicated: a replica takes no writes.
        bearer = {"Authorization": f"Bearer {monitoring_token(primary)}"}
        while True:
            resp = secondary.test_client().get("/metrics", headers=bearer)
            r = parse(resp.text) if resp.status_code == 200 else {}
            if value(r, "ledger_redis_primary_link_up") == 1:
                break
            assert time.monotonic() < deadline, "the replica's link did not come up"
            time.sleep(0.1)
        assert value(r, "ledger_redis_role", role="replica") == 1
        # The replica holds the same ledger: its gauges read the same policy.
        assert value(r, "ledger_policy_revision") == value(m, "ledger_policy_revision")
    finally:
        replica.terminate()
        replica.wait(timeout=10)


def _ledger_series(text: str) -> set[str]:
    """Series of the ledger's gauges, and any series labelled with a node or firm."""
    return {
        f"{name}{dict(labels)}"
        for name, labels in parse(text)
        if not name.startswith("ledger_gateway_") or {"firm", "scope"} & dict(labels).keys()
    }


def test_the_ledger_gauges_go_only_to_monitoring_ops_and_risk_admin(
    client: FlaskClient, ledger: Ledger, auth: Callable[[str], dict[str, str]]
) -> None:
    """Node and firm labels name what a desk head may not see: anyone else gets the
    request metrics only, which carry kinds and codes."""
    ledger.kill("desk:EQ-DERIV", by="ops-1", reason="drill")
    assert client.post("/v1/orders", json=ORDER, headers=auth("order-entry")).status_code == 201
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 200
    assert "ledger_gateway_decisions_total" in anonymous.text
    assert not _ledger_series(anonymous.text)
    assert "firm=" not in anonymous.text and "scope=" not in anonymous.text
    for role in ("desk-head", "order-entry", "market-data"):
        r = client.get("/metrics", headers=auth(role))
        assert r.status_code == 200, role
        assert not _ledger_series(r.text), role
        assert "firm=" not in r.text and "scope=" not in r.text, role
    for role in ("monitoring", "ops", "risk-admin"):
        r = client.get("/metrics", headers=auth(role))
        assert r.status_code == 200, role
        m = parse(r.text)
        assert value(m, "ledger_up") == 1, role
        assert limit(m, "ledger_limit_used", "desk:EQ-CASH", "max_open_orders") == 1, role
        assert (
            value(m, "ledger_kill_switch_active", firm="ACME", scope="desk:EQ-DERIV", auto="false")
            == 1
        )


def test_a_bad_scrape_token_is_401_and_shows_nothing(client: FlaskClient, ledger: Ledger) -> None:
    """A mistyped or revoked scrape token fails the scrape (Prometheus ``up`` 0), rather
    than silently dropping the gauges the alerts need."""
    r = client.get("/metrics", headers={"Authorization": "Bearer llt_not-a-token"})
    assert r.status_code == 401 and r.json["reason"] == "UNAUTHORIZED"
    assert "invalid_token" in r.headers["WWW-Authenticate"]
    assert "ledger_" not in r.text
    text = client.get("/metrics").text
    assert 'ledger_gateway_auth_failures_total{status="401"} 1.0' in text
