"""Connecting: URL credentials and settings, and failing closed with a caller's own client."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from ledger import Ledger, LedgerUnavailable, Order
from ledger.store.connect import RETRY, RedisSettings, connect

ORDER = Order("o1", "T-ALICE", "MM-1", "ACC-1", "AAPL", "buy", "100", "187.25")


class _SlamDoor:
    """A listener that accepts every connection and closes it at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        # shutdown wakes the blocked accept(); close alone would not.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def slam_door() -> Iterator[_SlamDoor]:
    door = _SlamDoor()
    yield door
    door.close()


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_callers_default_client_gives_up_after_a_bounded_number_of_connects(slam_door):
    # redis-py's default client retries three times with backoff, and each of
    # gives up after four connections and seconds of waiting.
    client = redis.Redis(host="127.0.0.1", port=slam_door.port, socket_timeout=1)
    lg = Ledger(client)
    with pytest.raises(LedgerUnavailable):
        lg.reserve(ORDER)
    # One immediate retry of the broken connection, no backoff.
    assert 1 <= slam_door.accepted <= 2


def test_a_callers_client_on_a_refused_port_fails_closed_with_the_ledgers_retry():
    client = redis.Redis(host="127.0.0.1", port=_refused_port(), socket_connect_timeout=1)
    assert client.get_retry().get_retries() == 3  # redis-py's default, before the facade
    lg = Ledger(client)
    assert client.get_retry() == RETRY
    assert client.connection_pool.connection_kwargs["retry"].get_retries() == 1
    with pytest.raises(LedgerUnavailable, match="ConnectionError"):
        lg.reserve(ORDER)
    with pytest.raises(LedgerUnavailable):
        lg.kill("global", by="ops", reason="r")


def test_a_client_that_retries_less_keeps_its_own_policy():
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(port=_refused_port(), retry=Retry(NoBackoff(), 0))
    Ledger(client)
    assert client.get_retry().get_retries() == 0


def test_from_url_bounds_connects_too(slam_door):
    lg = Ledger.from_url(f"redis://127.0.0.1:{slam_door.port}/0", timeout_s=1)
    with pytest.raises(LedgerUnavailable):
        lg.ping()
    assert 1 <= slam_door.accepted <= 2


def _kwargs(client: redis.Redis) -> dict[str, object]:
    return dict(client.connection_pool.connection_kwargs)


def test_settings_fill_in_credentials_the_url_leaves_out():
    settings = RedisSettings(username="gateway", password="s3cret")
    kw = _kwargs(connect("redis://127.0.0.1:1/0", timeout_s=1, settings=settings))
    assert (kw["username"], kw["password"]) == ("gateway", "s3cret")
    kw = _kwargs(connect("redis://admin:fromurl@127.0.0.1:1/0", timeout_s=1, settings=settings))
    assert (kw["username"], kw["password"]) == ("admin", "fromurl")
    kw = _kwargs(connect("redis://127.0.0.1:1/0", timeout_s=0.25, settings=RedisSettings()))
    assert "password" not in kw or kw["password"] is None
    assert kw["socket_timeout"] == kw["socket_connect_timeout"] == 0.25


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LEDGER_REDIS_USERNAME", "gateway")
    monkeypatch.setenv("LEDGER_REDIS_PASSWORD", "from-env")
    kw = _kwargs(connect("redis://127.0.0.1:1/0", timeout_s=1))
    assert (kw["username"], kw["password"]) == ("gateway", "from-env")
    assert RedisSettings.from_env({"LEDGER_REDIS_TLS_CA": "/ca.pem"}).tls_ca == "/ca.pem"


def test_tls_settings_with_a_plain_url_are_refused():
    with pytest.raises(ValueError, match="not rediss://"):
        connect("redis://127.0.0.1:1/0", timeout_s=1, settings=RedisSettings(tls_ca="/ca.pem"))
    kw = _kwargs(
        connect(
            "rediss://127.0.0.1:1/0",
            timeout_s=1,
            settings=RedisSettings(tls_ca="/ca.pem", tls_cert="/c.pem", tls_key="/k.pem"),
        )
    )
    assert (kw["ssl_ca_certs"], kw["ssl_certfile"], kw["ssl_keyfile"]) == (
        "/ca.pem",
        "/c.pem",
        "/k.pem",
    )
