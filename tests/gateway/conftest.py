"""Fixtures of the gateway tests: an app on the session's real server, tokens, state snapshots.

The ``ledger`` fixture (tests/conftest.py) flushes the server and loads
examples/policy.yaml: firm ACME, desks EQ-CASH (ACC-1, ACC-2) and EQ-DERIV
(ACC-3), traders T-ALICE and T-BOB.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from gateway import create_app
from ledger import Ledger
from ledger.store.tokens import Role, TokenStore

#: A valid order of T-ALICE on ACC-1 (desk EQ-CASH), notional 18,725.00 USD.
ORDER: dict[str, Any] = {
    "order_id": "o1",
    "trader": "T-ALICE",
    "strategy": "MM-1",
    "account": "ACC-1",
    "symbol": "AAPL",
    "side": "buy",
    "qty": "100",
    "price": "187.25",
}


@pytest.fixture
def app(ledger: Ledger, redis_url: str) -> Flask:
    # A generous Redis timeout: these tests run on a busy 2-core machine and
    # check behaviour, not speed. Fail-closed tests set their own.
    return create_app({"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tokens(ledger: Ledger, redis_client: redis.Redis) -> dict[str, str]:
    """One token per role; ``desk-head`` sees EQ-CASH only."""
    store = TokenStore(redis_client)
    return {
        "order-entry": store.create(Role.ORDER_ENTRY, "oe-1"),
        "ops": store.create(Role.OPS, "ops-alice"),
        "desk-head": store.create(Role.DESK_HEAD, "dh-cash", ["EQ-CASH"]),
        "risk-admin": store.create(Role.RISK_ADMIN, "ra-1"),
        "market-data": store.create(Role.MARKET_DATA, "feed-1"),
        "monitoring": store.create(Role.MONITORING, "prometheus-1"),
    }


@pytest.fixture
def auth(tokens: dict[str, str]) -> Callable[[str], dict[str, str]]:
    """Headers for a role: ``auth("ops")``."""
    return lambda role: {"Authorization": f"Bearer {tokens[role]}"}


@pytest.fixture
def new_order() -> Callable[..., dict[str, Any]]:
    """``new_order("o7", qty="5")``: :data:`ORDER` with another id and changes."""
    return lambda order_id="o1", **changes: {**ORDER, "order_id": order_id, **changes}


@pytest.fixture
def snapshot(redis_client: redis.Redis) -> Callable[[], dict[bytes, Any]]:
    """Every key but the tokens, serialized: equal snapshots mean nothing changed."""

    def take() -> dict[bytes, Any]:
        return {
            key: redis_client.dump(key)
            for key in sorted(redis_client.scan_iter(count=1000))
            if key != b"ledger:tokens"
        }

    return take


@pytest.fixture
def other_app(ledger: Ledger, redis_url: str) -> Flask:
    """A second gateway instance on the same server."""
    return create_app({"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True})
