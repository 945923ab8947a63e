"""The per-process token cache (gateway/token_cache.py): one round trip per order, a bounded revoke.

In process, on the session's real server: an order request sends one
command to Redis once the token is cached; a revoke announced on the events
channel applies at once on every app even with a long cache; a revoke that
is never announced (a record deleted by hand, a channel the Redis user may
not read) applies when the entry's time is up, never later (a test clock).
The same with real gunicorn processes is in test_token_revocation_server.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.connection import Connection

from gateway import create_app
from gateway.events import channel
from gateway.token_cache import RESUBSCRIBE_S, TokenCache
from ledger.store.tokens import Role, TokenStore


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def requests_of(sends: list[Any]) -> list[Any]:
    """The commands sent for requests: a new connection's greeting is not a round trip of one."""
    return [c for c in sends if b"CLIENT\r\n$7\r\nSETINFO" not in _bytes(c)]


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every command (or pipeline) written to any Redis socket of this process from now on."""
    sent: list[Any] = []
    original = Connection.send_packed_command

    def counting(self: Connection, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    return sent


def test_an_order_request_is_one_redis_round_trip(ledger, redis_url, auth, new_order, sends):
    app = create_app({"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True})
    client = app.test_client()
    # The first requests connect, subscribe and read the token (again once the
    # subscription's confirmation has dropped the cache).
    warm = iter(range(1000))

    def warmed() -> bool:
        r = client.post("/v1/orders", json=new_order(f"w{next(warm)}"), headers=auth("order-entry"))
        assert r.status_code == 201
        return bool(app.extensions["ledger"].token_cache.subscribed)

    _until(warmed)
    r = client.post("/v1/orders", json=new_order("w-last"), headers=auth("order-entry"))
    assert r.status_code == 201
    sends.clear()
    for i in range(20):
        r = client.post("/v1/orders", json=new_order(f"r{i}"), headers=auth("order-entry"))
        assert r.status_code == 201, r.json
    written = [_bytes(c).upper() for c in requests_of(sends)]
    assert len(written) == 20
    # The order's one script call: a function of the library, or EVALSHA without it.
    assert all((b"FCALL" in c or b"EVALSHA" in c) and b"HGET" not in c for c in written)


def test_without_a_cache_the_token_is_read_on_every_request(
    ledger, redis_url, auth, new_order, sends
):
    app = create_app(
        {"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True, "TOKEN_CACHE_MS": 0}
    )
    client = app.test_client()
    r = client.post("/v1/orders", json=new_order("w0"), headers=auth("order-entry"))
    assert r.status_code == 201
    sends.clear()
    for i in range(5):
        r = client.post("/v1/orders", json=new_order(f"r{i}"), headers=auth("order-entry"))
        assert r.status_code == 201
    calls = requests_of(sends)
    assert sum(b"HGET" in _bytes(c).upper() for c in calls) == 5
    assert len(calls) == 10


def test_an_announced_revoke_applies_at_once_on_every_app_however_long_the_cache(
    ledger, redis_url, redis_client, auth
):
    config = {"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True}
    apps = [create_app({**config, "TOKEN_CACHE_MS": 600_000}) for _ in range(2)]
    clients = [app.test_client() for app in apps]
    for c in clients:
        assert c.get("/v1/kill", headers=auth("ops")).status_code == 200
        assert c.get("/v1/kill", headers=auth("ops")).status_code == 200  # from the cache
    assert TokenStore(redis_client).revoke("ops-alice")
    for c in clients:
        r = c.get("/v1/kill", headers=auth("ops"))
        assert r.status_code == 401 and r.json["reason"] == "UNAUTHORIZED"
    # Other tokens are read again and still work.
    assert clients[0].get("/v1/states", headers=auth("desk-head")).status_code == 200


def test_the_revoke_is_announced_on_the_events_channel(redis_client, tokens):
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel("ledger"))
    try:
        assert TokenStore(redis_client).revoke("ops-alice")
        message = None
        for _ in range(50):
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                break
        assert message is not None
        event = json.loads(message["data"])
        assert event["type"] == "token_revoked" and event["name"] == "ops-alice"
        assert str(tokens["ops"]) not in message["data"].decode()
    finally:
        pubsub.close()


def _bytes(command: Any) -> bytes:
    if isinstance(command, list | tuple):
        return b"".join(bytes(part) for part in command)
    return bytes(command)


def _until(predicate: Any, timeout_s: float = 2.0) -> None:
    """Wait (real time) until ``predicate()``; the test clocks of the caches do not move."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def cache(redis_client) -> Iterator[tuple[TokenCache, _Clock]]:
    clock = _Clock()
    tc = TokenCache(TokenStore(redis_client), ttl_ms=1000, clock=clock)
    yield tc, clock
    tc.close()


def test_an_unannounced_revoke_applies_when_the_entry_expires_never_later(cache, redis_client):
    tc, clock = cache
    store = TokenStore(redis_client)
    token = store.create(Role.OPS, "by-hand")
    # Cached once the subscription is confirmed (its confirmation drops the cache).
    _until(lambda: tc.lookup(token) is not None and tc.subscribed)
    assert tc.lookup(token).name == "by-hand"
    # Deleted by hand, no announcement: the cache cannot know before its bound.
    digest = redis_client.hget(store.key, "n|by-hand").decode()
    redis_client.hdel(store.key, "n|by-hand", f"t|{digest}")
    clock.now += 0.999
    assert tc.lookup(token).name == "by-hand"
    clock.now += 0.001
    assert tc.lookup(token) is None
    assert tc.lookup(token) is None


def test_a_channel_the_user_may_not_read_leaves_the_bound(cache, redis_client, server):
    _, clock = cache
    redis_client.acl_setuser(
        "nochannel",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=[],
        reset_channels=True,
        commands=["+@all"],
    )
    limited = redis.Redis(host=server.host, port=server.port, username="nochannel", password="pw")
    tc = TokenCache(TokenStore(limited), ttl_ms=1000, clock=clock)
    try:
        token = TokenStore(redis_client).create(Role.OPS, "no-channel")
        assert tc.lookup(token).name == "no-channel"
        # The refusal to subscribe arrives on the channel's connection; each lookup reads it.
        _until(lambda: tc.lookup(token) is not None and not tc.subscribed)
        cached_at = clock.now
        # Announced, but this process cannot hear it: the entry's bound alone holds it.
        assert TokenStore(redis_client).revoke("no-channel")
        clock.now = cached_at + 0.999
        assert tc.lookup(token).name == "no-channel"
        clock.now = cached_at + 1.0
        assert tc.lookup(token) is None
        # It tries the channel again after a while, and is refused again: still the bound.
        clock.now += RESUBSCRIBE_S
        assert tc.lookup(token) is None
        _until(lambda: tc.lookup(token) is None and not tc.subscribed)
    finally:
        tc.close()
        limited.close()
        redis_client.acl_deluser("nochannel")


def test_a_lost_channel_drops_the_cache_and_comes_back(cache, redis_client):
    tc, clock = cache
    store = TokenStore(redis_client)
    token = store.create(Role.OPS, "lost")
    _until(lambda: tc.lookup(token) is not None and tc.subscribed)
    assert tc.lookup(token).name == "lost"
    redis_client.client_kill_filter(_type="pubsub")
    digest = redis_client.hget(store.key, "n|lost").decode()
    redis_client.hdel(store.key, "n|lost", f"t|{digest}")
    # The test clock stands still, so only the loss (or the confirmation of the
    # subscription made again) can drop what was cached.
    _until(lambda: tc.lookup(token) is None)
    _until(lambda: tc.subscribed)
    assert tc.lookup(store.create(Role.OPS, "fresh")).name == "fresh"
