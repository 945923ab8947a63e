"""The ledger and token store of this app and process, connected on first use.

Blueprints take them from here (as Flask's tutorial keeps its database in
``flaskr/db.py``), so nothing imports back from the package that creates the app.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from flask import current_app

from gateway.token_cache import TokenCache
from ledger import Ledger
from ledger.store.connect import RedisSettings, connect
from ledger.store.durable import Durability, env_message
from ledger.store.tokens import TokenStore, resolve_secret

__all__ = ["get_ledger", "get_tokens", "get_token_cache", "token_secret", "durability"]


class _Connection:
    """The ledger and token store of one process (gunicorn forks workers after import)."""

    def __init__(self, config: dict[str, Any]) -> None:
        setting = durability(config)
        # The durability wait comes on top of the bound on the call itself.
        wait_ms = setting.timeout_ms if setting.on else 0
        timeout_s = (int(config["REDIS_TIMEOUT_MS"]) + wait_ms) / 1000
        # A Sentinel URL finds the primary again after a failover: the retry of a
        # dropped connection asks the sentinels anew (ledger.store.connect).
        client = connect(config["REDIS_URL"], timeout_s=timeout_s, settings=_redis_settings(config))
        actor = config["ACTOR"] or f"gateway@{socket.gethostname()}"
        self.pid = os.getpid()
        self.ledger = Ledger(client, prefix=config["PREFIX"], actor=actor, **setting.as_kwargs())
        self.tokens = TokenStore(client, config["PREFIX"], secret=token_secret(config))
        self.token_cache = TokenCache(self.tokens, config["TOKEN_CACHE_MS"])


def _redis_settings(config: dict[str, Any]) -> RedisSettings:
    return RedisSettings(
        config["REDIS_USERNAME"],
        config["REDIS_PASSWORD"],
        config["REDIS_TLS_CA"],
        config["REDIS_TLS_CERT"],
        config["REDIS_TLS_KEY"],
    )


def token_secret(config: dict[str, Any]) -> str:
    """The key of the token digests, as the app's settings give it (or a refusal)."""
    dev = config["INSECURE_DEV_TOKENS"]
    # As ledger.store.tokens.token_secret reads it, so the gateway and the CLI agree.
    if isinstance(dev, str):
        dev = dev.strip().lower() in ("1", "true", "yes")
    return resolve_secret(config["TOKEN_SECRET"], dev is True or dev == 1)


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
    """The token store of this app and process."""
    return _connection().tokens


def get_token_cache() -> TokenCache:
    """Token lookups of this process, cached within their bound (:mod:`gateway.token_cache`)."""
    return _connection().token_cache


def durability(config: dict[str, Any]) -> Durability:
    """The durability setting; a ``ValueError`` naming the ``LEDGER_DURABLE_*`` variable."""
    try:
        return Durability(
            config["DURABLE_REPLICAS"], config["DURABLE_TIMEOUT_MS"], config["DURABLE_FSYNC"]
        )
    except ValueError as exc:
        raise ValueError(env_message(exc)) from None
