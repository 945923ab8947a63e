"""The order gateway: a stateless Flask service in front of the ledger.

Start it with ``gunicorn -c gateway/gunicorn.conf.py 'gateway:create_app()'``.
Every instance holds no state of its own: orders, kill switches and tokens all
live in Redis, so any instance can serve any request.

Configuration comes from environment variables prefixed ``LEDGER_`` (values
are parsed as JSON where they can be, so ``LEDGER_REDIS_TIMEOUT_MS=50`` is an
integer), then from ``test_config``:

========================  ===========================  =================================
``REDIS_URL``             ``redis://127.0.0.1:6379/0``  the ledger's Redis (also
                                                        ``redis+sentinel://h:p,h:p/svc``)
``REDIS_TIMEOUT_MS``      ``50``                        bound on every Redis call; past it
                                                        an order is refused (fail closed)
``PREFIX``                ``ledger``                    key prefix
``ACTOR``                 ``gateway@HOST``              recorded with every decision
``DASHBOARD_REFRESH_MS``  ``2000``                      how often the dashboard refreshes
``AUDIT_SCAN``            ``500``                       audit records the dashboard reads
``DURABLE_REPLICAS``      ``0``                         replicas that must hold a change
                                                        before it is acknowledged; 503
                                                        when they do not (README "High
                                                        availability")
``DURABLE_TIMEOUT_MS``    ``100``                       how long to wait for them
``DURABLE_FSYNC``         ``false``                     they must have fsynced it (WAITAOF)
========================  ===========================  =================================
"""

from __future__ import annotations

import os
import re
import socket
import threading
from typing import Any

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from ledger import Ledger, sentinel
from ledger.durable import DEFAULT_TIMEOUT_MS, Durability, env_message
from ledger.tokens import TokenStore

__all__ = ["create_app", "get_ledger", "get_tokens", "DEFAULTS"]

DEFAULTS: dict[str, Any] = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "REDIS_TIMEOUT_MS": 50,
    "PREFIX": "ledger",
    "ACTOR": None,
    "DASHBOARD_REFRESH_MS": 2000,
    "AUDIT_SCAN": 500,
    "DURABLE_REPLICAS": 0,
    "DURABLE_TIMEOUT_MS": DEFAULT_TIMEOUT_MS,
    "DURABLE_FSYNC": False,
    # Orders are small; anything this large is not an order.
    "MAX_CONTENT_LENGTH": 64 * 1024,
}


_PREFIX = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class _Connection:
    """The ledger and token store of one process (gunicorn forks workers after import)."""

    def __init__(self, config: dict[str, Any]) -> None:
        durability = _durability(config)
        # The durability wait comes on top of the bound on the call itself.
        wait_ms = durability.timeout_ms if durability.on else 0
        timeout_s = (int(config["REDIS_TIMEOUT_MS"]) + wait_ms) / 1000
        url = config["REDIS_URL"]
        # One immediate retry on a broken connection only (a server restart leaves
        # stale pooled sockets); never on a timeout, which keeps the bound honest.
        # A Sentinel URL finds the primary again after a failover: the retry
        # of a dropped connection asks the sentinels anew.
        connect = sentinel.master_client if sentinel.is_sentinel_url(url) else redis.Redis.from_url
        client = connect(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=0,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        actor = config["ACTOR"] or f"gateway@{socket.gethostname()}"
        self.pid = os.getpid()
        self.ledger = Ledger(client, prefix=config["PREFIX"], actor=actor, **durability.as_kwargs())
        self.tokens = TokenStore(client, config["PREFIX"])


_lock = threading.Lock()


def _connection() -> _Connection:
    app = current_app
    conn: _Connection | None = app.extensions.get("ledger")
    if conn is None or conn.pid != os.getpid():
        with _lock:
            conn = app.extensions.get("ledger")
            if conn is None or conn.pid != os.getpid():
                conn = _Connection(app.config)
                app.extensions["ledger"] = conn
    return conn


def get_ledger() -> Ledger:
    """The ledger of this app and process, connected on first use."""
    return _connection().ledger


def get_tokens() -> TokenStore:
    return _connection().tokens


def _durability(config: dict[str, Any]) -> Durability:
    try:
        return Durability(
            config["DURABLE_REPLICAS"], config["DURABLE_TIMEOUT_MS"], config["DURABLE_FSYNC"]
        )
    except ValueError as exc:
        raise ValueError(env_message(exc)) from None


def _check_config(config: dict[str, Any]) -> None:
    """Refuse settings that would only fail on the first request; the message names the variable."""
    for name, minimum in (
        ("REDIS_TIMEOUT_MS", 1),
        ("DASHBOARD_REFRESH_MS", 100),
        ("AUDIT_SCAN", 0),
    ):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(
                f"LEDGER_{name} must be an integer of at least {minimum}, got {value!r}"
            )
    if not isinstance(config["PREFIX"], str) or not _PREFIX.fullmatch(config["PREFIX"]):
        raise ValueError(
            "LEDGER_PREFIX must be 1-64 characters of letters, digits and ._:- (no braces), "
            f"got {config['PREFIX']!r}"
        )
    if not isinstance(config["REDIS_URL"], str) or "://" not in config["REDIS_URL"]:
        raise ValueError(f"LEDGER_REDIS_URL must be a redis:// URL, got {config['REDIS_URL']!r}")
    if sentinel.is_sentinel_url(config["REDIS_URL"]):
        try:
            sentinel.parse(config["REDIS_URL"])
        except ValueError as exc:
            raise ValueError(f"LEDGER_REDIS_URL: {exc}") from None
    _durability(config)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The gateway app: config from ``LEDGER_*`` environment variables, then ``test_config``."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LEDGER")
    if test_config:
        app.config.from_mapping(test_config)
    if type(app.config["PREFIX"]) is int:  # LEDGER_PREFIX=2024 arrives parsed as JSON
        app.config["PREFIX"] = str(app.config["PREFIX"])
    _check_config(app.config)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    from gateway import (
        baskets,
        dashboard,
        errors,
        health,
        metrics,
        openapi,
        ops,
        orders,
        overrides,
        prices,
        states,
    )

    metrics.init_app(app)
    errors.init_app(app)
    app.register_blueprint(orders.bp)
    app.register_blueprint(baskets.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(states.bp)
    app.register_blueprint(prices.bp)
    app.register_blueprint(overrides.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    return app
