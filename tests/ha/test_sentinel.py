"""Sentinel URLs, readiness against a replica, and clients following a failover."""

from __future__ import annotations

import pytest
import redis
from click.testing import CliRunner

from gateway import create_app
from ledger import Ledger, LedgerUnavailable, load_policy_file
from ledger.cli import cli
from ledger.store.sentinel import SentinelURL, master_client, parse
from ledger.store.tokens import Role, TokenStore
from tests.conftest import EXAMPLE_POLICY
from tests.gateway.conftest import ORDER
from tests.ha.conftest import Replicated, Sentinels
from tests.helpers import load, order

# -- URLs ------------------------------------------------------------------------------


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_db() -> None:
    url = parse("redis+sentinel://u:p%40ss@10.0.0.1:26379,[::1]:26380/ledger-main/3")
    assert url == SentinelURL(
        (("10.0.0.1", 26379), ("::1", 26380)), "ledger-main", 3, False, "u", "p@ss", {}
    )
    assert url.redacted() == "redis+sentinel://***@10.0.0.1:26379,::1:26380/ledger-main/3"
    tls = parse("rediss+sentinel://h:1/svc?ssl_ca_certs=/ca.pem&sentinel_password=s")
    assert (tls.tls, tls.db, tls.options) == (
        True,
        0,
        {"ssl_ca_certs": "/ca.pem", "sentinel_password": "s"},
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h:1", "the path is /service_name or /service_name/db"),
        ("redis+sentinel://h:1/svc/x", "the database is a number, got 'x'"),
        ("redis+sentinel://h:1/svc/0/1", "the path is /service_name or /service_name/db"),
        ("redis+sentinel://h/svc", "each sentinel is host:port, got 'h'"),
        ("redis+sentinel://h:1,:2/svc", "each sentinel is host:port, got ':2'"),
        ("redis+sentinel://h:99999/svc", "each sentinel is host:port, got 'h:99999'"),
        ("redis+sentinel://h:1/svc?timeout=1", "unknown option 'timeout'"),
        ("redis://h:1/0", "a Sentinel URL starts with"),
    ],
)
def test_a_bad_sentinel_url_is_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(url)


def test_a_refusing_sentinel_is_not_retried_with_backoff() -> None:
    # redis-py's default would retry each sentinel with seconds of backoff, holding
    # a fail-closed answer; the other sentinels are the retry.
    client = master_client("redis+sentinel://127.0.0.1:1,127.0.0.1:2/svc/0", socket_timeout=1)
    for sentinel in client.connection_pool.sentinel_manager.sentinels:
        retry = sentinel.connection_pool.connection_kwargs["retry"]
        assert retry.get_retries() == 0


def test_the_gateway_refuses_a_bad_sentinel_url_at_start() -> None:
    with pytest.raises(ValueError, match="LEDGER_REDIS_URL: the path is /service_name"):
        create_app({"REDIS_URL": "redis+sentinel://127.0.0.1:1"})


# -- readiness (issue 9 item 14) ---------------------------------------------------------


def _gateway(url: str, **config: object) -> object:
    return create_app({"REDIS_URL": url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True, **config})


def test_readyz_is_not_ready_against_a_read_only_replica(replicated: Replicated) -> None:
    load(Ledger.from_url(replicated.url, timeout_s=5.0))
    replicated.synced()
    replica_url = replicated.replicas[0].url
    r = _gateway(replica_url).test_client().get("/readyz")  # type: ignore[attr-defined]
    assert r.status_code == 503
    assert r.json["reason"] == "RISK_UNAVAILABLE"
    assert "read-only slave" in r.json["message"]
    # ...where every order is refused all the same.
    with pytest.raises(LedgerUnavailable, match="ReadOnlyError"):
        Ledger.from_url(replica_url, timeout_s=5.0).reserve(order("o1"))
    assert _gateway(replicated.url).test_client().get("/readyz").status_code == 200  # type: ignore[attr-defined]


def test_readyz_is_not_ready_while_the_durability_setting_cannot_be_met(
    replicated: Replicated,
) -> None:
    load(Ledger.from_url(replicated.url, timeout_s=5.0))
    two = _gateway(replicated.url, DURABLE_REPLICAS=2).test_client()  # type: ignore[attr-defined]
    r = two.get("/readyz")
    assert r.status_code == 503
    assert "1 live replica(s), durability needs 2" in r.json["message"]
    one = _gateway(replicated.url, DURABLE_REPLICAS=1).test_client()  # type: ignore[attr-defined]
    assert one.get("/readyz").status_code == 200


# -- following a failover ---------------------------------------------------------------


def _failover(sentinels: Sentinels) -> int:
    """Ask the sentinels for a failover; returns the new primary's port once they agree."""
    old = sentinels.topo.primary.port
    with redis.Redis(port=sentinels.ports[0], socket_timeout=5) as c:
        c.execute_command("SENTINEL", "FAILOVER", Sentinels.SERVICE)
    sentinels.wait(lambda: sentinels.primary_port() not in (None, old), "failover")
    port = sentinels.primary_port()
    assert port is not None

    def promoted() -> bool:
        with redis.Redis(port=port, socket_timeout=5) as c:
            return bool(c.info("replication")["role"] == "master")

    sentinels.wait(promoted, "new primary takes writes")
    return port


def test_the_library_and_the_cli_follow_a_failover(sentinels: Sentinels) -> None:
    lg = Ledger.from_url(sentinels.url, timeout_s=5.0, durable_replicas=1, durable_timeout_ms=5000)
    load(lg)
    assert lg.reserve(order("before")).accepted
    new_port = _failover(sentinels)
    assert new_port == sentinels.topo.replicas[0].port

    def serves() -> bool:
        try:
            # A connection to the demoted primary is dropped on its READONLY
            # answer; the next call asks the sentinels again.
            return lg.reserve(order("after")).accepted
        except LedgerUnavailable:
            return False

    # The old primary rejoins as a replica: durable acks resume once it has synced.
    Sentinels.wait(serves, "the same Ledger serves on the new primary")
    with redis.Redis(port=new_port) as c:
        assert c.exists(lg.keys.order("F1", "before"), lg.keys.order("F1", "after")) == 2
    result = CliRunner().invoke(cli, ["--redis-url", sentinels.url, "check"])
    assert result.exit_code == 0, result.output


def test_a_gateway_follows_a_failover_without_a_restart(sentinels: Sentinels) -> None:
    lg = Ledger.from_url(sentinels.url, timeout_s=5.0)
    lg.load_policy(load_policy_file(EXAMPLE_POLICY), by="test")
    token = TokenStore(lg.redis).create(Role.ORDER_ENTRY, "oe-1")
    sentinels.topo.synced()
    http = _gateway(sentinels.url).test_client()  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}"}
    assert http.post("/v1/orders", json=ORDER, headers=headers).status_code == 201
    assert http.get("/readyz").status_code == 200
    _failover(sentinels)
    answers = []

    def serves() -> bool:
        r = http.post("/v1/orders", json={**ORDER, "order_id": "o2"}, headers=headers)
        answers.append(r.status_code)
        # 200: a 503 whose order was stored after all, now replayed as open.
        return r.status_code in (200, 201)

    Sentinels.wait(serves, "the gateway serves on the new primary")
    # Every answer in between was a fail-closed 503, never anything else.
    assert set(answers) <= {200, 201, 503}
    assert http.get("/readyz").status_code == 200


def test_passwords_of_the_data_nodes_and_of_the_sentinels_pass_through(
    replicated: Replicated, tmp_path
) -> None:
    replicated.require_password("data-secret")
    group = Sentinels(replicated, str(tmp_path / "auth"), password="sentinel-secret")
    try:
        hosts = ",".join(f"127.0.0.1:{p}" for p in group.ports)
        url = f"redis+sentinel://:data-secret@{hosts}/ledger/0?sentinel_password=sentinel-secret"
        lg = Ledger.from_url(url, timeout_s=5.0, durable_replicas=1, durable_timeout_ms=5000)
        load(lg)
        assert lg.reserve(order("o1")).accepted
        assert replicated.replica_client().exists(lg.keys.order("F1", "o1"))
        # A wrong password fails closed, on either side.
        for bad in (
            f"redis+sentinel://:wrong@{hosts}/ledger/0?sentinel_password=sentinel-secret",
            f"redis+sentinel://:data-secret@{hosts}/ledger/0?sentinel_password=wrong",
        ):
            with pytest.raises(LedgerUnavailable):
                Ledger.from_url(bad, timeout_s=5.0).reserve(order("o2"))
    finally:
        group.close()
