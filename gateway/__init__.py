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
``DASHBOARD_SAMPLE_MS``   ``30000``                     how often its utilization history is
                                                        sampled (:mod:`gateway.history`)
``AUDIT_SCAN``            ``500``                       audit records the dashboard reads
``TOKEN_SECRET``          (required)                    key of the token digests, shared with
                                                        ``ledger token``, :mod:`ledger.store.tokens`
``TOKEN_CACHE_MS``        ``1000``                      longest a worker reuses a token lookup;
                                                        a revoke is refused within it
                                                        (:mod:`gateway.token_cache`)
``INSECURE_DEV_TOKENS``   ``false``                     without ``TOKEN_SECRET``, use a public
                                                        development secret (never in production)
``REDIS_USERNAME``,       unset                         ACL user and password, TLS files
``REDIS_PASSWORD``,                                     (``rediss://``), :mod:`ledger.store.connect`
``REDIS_TLS_CA``, ...
``DURABLE_REPLICAS``      ``0``                         replicas that must hold a change
                                                        before it is acknowledged; 503
                                                        when they do not (README "High
                                                        availability")
``DURABLE_TIMEOUT_MS``    ``100``                       how long to wait for them
``DURABLE_FSYNC``         ``false``                     they must have fsynced it (WAITAOF)
``DRILL_GATEWAYS``        unset                         gateway URLs the drills of
                                                        ``POST /v1/drills/...`` probe
``DRILL_TOKEN``           unset                         the order-entry token they probe with
``DRILL_HTTP_TIMEOUT_MS`` ``5000``                      how long a probed gateway may take
========================  ===========================  =================================

Secrets and paths (``TOKEN_SECRET``, ``REDIS_*`` credentials and TLS files)
are taken from the environment as they are, never parsed as JSON.
"""

from __future__ import annotations

import os
import re
from typing import Any

from flask import Flask

from gateway.connection import (
    durability,
    get_ledger,
    get_token_cache,
    get_tokens,
    token_secret,
)
from ledger.store.durable import DEFAULT_TIMEOUT_MS
from ledger.store.sentinel import is_sentinel_url
from ledger.store.sentinel import parse as parse_sentinel_url
from ledger.store.tokens import DEV_SECRET

__all__ = ["create_app", "get_ledger", "get_tokens", "get_token_cache", "DEFAULTS"]

DEFAULTS: dict[str, Any] = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "REDIS_TIMEOUT_MS": 50,
    "PREFIX": "ledger",
    "ACTOR": None,
    "DASHBOARD_REFRESH_MS": 2000,
    "DASHBOARD_SAMPLE_MS": 30000,
    "AUDIT_SCAN": 500,
    "TOKEN_SECRET": None,
    "TOKEN_CACHE_MS": 1000,
    "INSECURE_DEV_TOKENS": False,
    "REDIS_USERNAME": None,
    "REDIS_PASSWORD": None,
    "REDIS_TLS_CA": None,
    "REDIS_TLS_CERT": None,
    "REDIS_TLS_KEY": None,
    "DURABLE_REPLICAS": 0,
    "DURABLE_TIMEOUT_MS": DEFAULT_TIMEOUT_MS,
    "DURABLE_FSYNC": False,
    "DRILL_GATEWAYS": None,
    "DRILL_TOKEN": None,
    "DRILL_HTTP_TIMEOUT_MS": 5000,
    # Orders are small; anything this large is not an order.
    "MAX_CONTENT_LENGTH": 64 * 1024,
}


_PREFIX = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: Taken verbatim from ``LEDGER_*``: JSON parsing would turn a secret like "1e5" into 100000.0.
_RAW = (
    "TOKEN_SECRET",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_TLS_CA",
    "REDIS_TLS_CERT",
    "REDIS_TLS_KEY",
    "DRILL_TOKEN",
)


def _check_config(config: dict[str, Any]) -> None:
    """Refuse settings that would only fail on the first request; the message names the variable."""
    for name, minimum in (
        ("REDIS_TIMEOUT_MS", 1),
        ("DASHBOARD_REFRESH_MS", 100),
        ("DASHBOARD_SAMPLE_MS", 1000),
        ("DRILL_HTTP_TIMEOUT_MS", 1),
        ("AUDIT_SCAN", 0),
        ("TOKEN_CACHE_MS", 0),
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
    # A gateway without the token secret would honour no token, or (keyed with
    # nothing) any digest written straight into Redis: refuse to start.
    token_secret(config)
    scheme = config["REDIS_URL"].partition("://")[0].lower()
    if scheme not in ("rediss", "rediss+sentinel") and (
        config["REDIS_TLS_CA"] or config["REDIS_TLS_CERT"] or config["REDIS_TLS_KEY"]
    ):
        raise ValueError("LEDGER_REDIS_TLS_* are set but LEDGER_REDIS_URL is not rediss://")
    if is_sentinel_url(config["REDIS_URL"]):
        try:
            parse_sentinel_url(config["REDIS_URL"])
        except ValueError as exc:
            raise ValueError(f"LEDGER_REDIS_URL: {exc}") from None
    durability(config)
    from gateway.drills import gateways

    gateways(config)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The gateway app: config from ``LEDGER_*`` environment variables, then ``test_config``."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("LEDGER")
    for name in _RAW:
        if f"LEDGER_{name}" in os.environ:
            app.config[name] = os.environ[f"LEDGER_{name}"]
    if test_config:
        app.config.from_mapping(test_config)
    if type(app.config["PREFIX"]) is int:  # LEDGER_PREFIX=2024 arrives parsed as JSON
        app.config["PREFIX"] = str(app.config["PREFIX"])
    _check_config(app.config)
    if token_secret(app.config) == DEV_SECRET:
        app.logger.warning(
            "tokens are keyed with the public development secret (LEDGER_INSECURE_DEV_TOKENS): "
            "anyone who can write to Redis can mint a token; set LEDGER_TOKEN_SECRET"
        )
    app.json.sort_keys = False  # type: ignore[attr-defined]

    # Imported here: ``gateway.run`` and gunicorn's config import the package without the app.
    from gateway import (
        baskets,
        dashboard,
        drills,
        error_handlers,
        health,
        metrics,
        openapi,
        ops,
        orders,
        overrides,
        prices,
        reconcile,
        states,
    )

    metrics.init_app(app)
    error_handlers.init_app(app)
    app.register_blueprint(orders.bp)
    app.register_blueprint(baskets.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(states.bp)
    app.register_blueprint(prices.bp)
    app.register_blueprint(overrides.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(drills.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(reconcile.bp)
    return app
