"""A revoked token under real gunicorn processes: refused by every worker within the stated bound.

Each worker process caches token lookups (gateway/token_cache.py). With the
events channel readable, a revoke reaches every worker at once, even with a
cache of ten minutes; with a Redis user that may not read the channel, the
cache's own bound (``LEDGER_TOKEN_CACHE_MS``) is what holds, and no request
sent after it is accepted. Clients keep their connections alive, as the
edge's upstream pool does, so the same worker threads answer throughout.
"""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.run import launch, stop, wait_ready
from ledger import Ledger
from ledger.store.embedded import EmbeddedRedis, free_port
from ledger.store.tokens import Role, TokenStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 8
WORKERS = 2


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedRedis]:
    srv = EmbeddedRedis().start()
    try:
        lg = Ledger(redis.Redis.from_url(srv.url), actor="revocation-test")
        lg.load_policy(str(ROOT / "examples" / "policy.yaml"), by="revocation-test")
        lg.redis.close()
        yield srv
    finally:
        srv.cleanup()


def _gateway(srv: EmbeddedRedis, log: Path, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    with log.open("wb") as out:
        proc = launch(
            srv.url,
            bind=f"127.0.0.1:{port}",
            workers=WORKERS,
            threads=2,
            env={"LEDGER_REDIS_TIMEOUT_MS": "2000", **env},
            output=out,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
    except RuntimeError as exc:
        stop([proc])
        pytest.fail(f"{exc}\n{log.read_text()}")
    return f"127.0.0.1:{port}", proc


def _get(conn: http.client.HTTPConnection, token: str) -> int:
    conn.request("GET", "/v1/kill", headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    resp.read()
    assert not resp.will_close, "the gateway closed a kept-alive connection"
    return resp.status


def _connections(address: str) -> list[http.client.HTTPConnection]:
    host, port = address.split(":")
    return [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(CONNECTIONS)]


def _subscribers(client: redis.Redis) -> int:
    return int(client.pubsub_numsub("ledger:events")[0][1])


def test_an_announced_revoke_reaches_every_worker_at_once_whatever_the_cache(server, tmp_path):
    client = redis.Redis.from_url(server.url)
    store = TokenStore(client)
    token = store.create(Role.OPS, "announced")
    address, proc = _gateway(server, tmp_path / "gunicorn.log", LEDGER_TOKEN_CACHE_MS="600000")
    conns = _connections(address)
    try:
        deadline = time.monotonic() + 10
        # More connections until both workers have looked the token up (each
        # subscribes on its first lookup); a connection stays with its worker.
        while _subscribers(client) < WORKERS:
            assert time.monotonic() < deadline, "not every worker served a request"
            conns += _connections(address)
            assert all(_get(c, token) == 200 for c in conns)
        for _ in range(3):
            assert all(_get(c, token) == 200 for c in conns)
        assert store.revoke("announced")
        revoked_at = time.monotonic()
        # Every connection, on whichever worker and thread: refused from now on,
        # though each cache would keep the token for ten minutes.
        for _ in range(3):
            assert [_get(c, token) for c in conns] == [401] * len(conns)
        assert time.monotonic() - revoked_at < 5
    finally:
        for c in conns:
            c.close()
        stop([proc])
        client.close()


def test_without_the_channel_no_request_after_the_bound_is_accepted(server, tmp_path):
    bound_ms = 1000
    client = redis.Redis.from_url(server.url)
    # A gateway user that may do everything but read (or publish on) any channel.
    client.acl_setuser(
        "deaf",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=[],
        reset_channels=True,
        commands=["+@all"],
    )
    store = TokenStore(client)
    token = store.create(Role.OPS, "unheard")
    address, proc = _gateway(
        server,
        tmp_path / "gunicorn.log",
        LEDGER_TOKEN_CACHE_MS=str(bound_ms),
        LEDGER_REDIS_USERNAME="deaf",
        LEDGER_REDIS_PASSWORD="pw",
    )
    conns = _connections(address)
    try:
        for _ in range(5):
            assert all(_get(c, token) == 200 for c in conns)
        assert _subscribers(client) == 0
        assert store.revoke("unheard")
        revoked_at = time.monotonic()
        answers: list[tuple[float, int]] = []
        while time.monotonic() < revoked_at + bound_ms / 1000 + 0.5:
            for c in conns:
                sent = time.monotonic()
                answers.append((sent, _get(c, token)))
        late = [(round(t - revoked_at, 3), s) for t, s in answers if t > revoked_at + 1.0]
        assert late and all(status == 401 for _, status in late), late
    finally:
        for c in conns:
            c.close()
        stop([proc])
        client.acl_deluser("deaf")
        client.close()
