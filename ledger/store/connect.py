"""The one place a redis-py client is built from a URL and settings.

The library (:meth:`ledger.Ledger.from_url`), the ``ledger`` command and the
gateway all connect through :func:`connect`, so they accept the same URLs and
the same environment:

* ``redis://[user:password@]host:port/db`` or ``rediss://...`` (TLS);
* ``redis+sentinel://host:port[,host:port...]/service[/db]`` (or
  ``rediss+sentinel://``): the primary Sentinel names, found again after a
  failover (:mod:`ledger.store.sentinel`);
* ``LEDGER_REDIS_USERNAME`` / ``LEDGER_REDIS_PASSWORD``: an ACL user and its
  password, so that a secret need not sit in a URL (what the URL names wins);
* ``LEDGER_REDIS_TLS_CA`` (CA bundle the server's certificate must chain to),
  ``LEDGER_REDIS_TLS_CERT`` / ``LEDGER_REDIS_TLS_KEY`` (a client certificate,
  for servers that ask for one). They need a ``rediss://`` URL: a plain one
  with TLS settings is refused rather than silently sent in clear.

Every client gets :data:`RETRY`: one immediate retry on a broken connection
and none on a timeout, so a call fails within a small multiple of its
timeout instead of redis-py's default backoff of several seconds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import ledger.store.sentinel as sentinel
from ledger._types import RedisClient

__all__ = ["RedisSettings", "connect", "bounded_retry", "RETRY"]

#: One immediate retry on a broken connection only (a server restart leaves
#: stale pooled sockets); never on a timeout, which keeps the bound honest.
RETRY: Final = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))

_TLS_SCHEMES: Final = ("rediss", "rediss+sentinel")


@dataclass(frozen=True)
class RedisSettings:
    """Credentials and TLS files used on top of what the URL says."""

    username: str | None = None
    password: str | None = None
    #: CA bundle the server's certificate must chain to (``rediss://`` only).
    tls_ca: str | None = None
    #: Client certificate and key, for servers that verify clients.
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RedisSettings:
        """``LEDGER_REDIS_USERNAME``, ``_PASSWORD``, ``_TLS_CA``, ``_TLS_CERT``, ``_TLS_KEY``."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            return env.get(f"LEDGER_REDIS_{name}") or None

        return cls(get("USERNAME"), get("PASSWORD"), get("TLS_CA"), get("TLS_CERT"), get("TLS_KEY"))


def bounded_retry(client: RedisClient) -> None:
    """Give a caller's ``redis.Redis`` the ledger's retry policy (:data:`RETRY`) unless it
    already retries less.

    redis-py's default (three retries with exponential backoff, each connect
    retried as well) takes seconds to give up on a refused connection; a
    risk check must fail closed within its own timeout.
    """
    if not isinstance(client, redis.Redis):
        return
    retry = client.get_retry()
    retries = retry.get_retries() if retry is not None else 0
    patient = retries > 0 and not isinstance(getattr(retry, "_backoff", None), NoBackoff)
    # A client already at most as patient (no backoff, at most one retry) keeps its own.
    if retries > RETRY.get_retries() or patient:
        client.set_retry(RETRY)


def connect(
    url: str,
    *,
    timeout_s: float,
    cluster: bool = False,
    settings: RedisSettings | None = None,
) -> RedisClient:
    """A client for ``url``; ``timeout_s`` bounds every connect and call.

    Args:
        url: ``redis://`` or ``rediss://`` (TLS), optionally with ``user:password@``,
            or a Sentinel URL.
        timeout_s: socket connect and read timeout in seconds.
        cluster: a ``RedisCluster`` client.
        settings: credentials and TLS files; :meth:`RedisSettings.from_env` if None.

    Raises:
        ValueError: a malformed URL, or TLS settings with a plain ``redis://`` URL.
    """
    s = RedisSettings.from_env() if settings is None else settings
    scheme = url.partition("://")[0].lower()
    tls = scheme in _TLS_SCHEMES
    if not tls and (s.tls_ca or s.tls_cert or s.tls_key):
        raise ValueError(
            "TLS settings (LEDGER_REDIS_TLS_*) are given but the URL is not rediss://; "
            "use rediss:// or drop them"
        )
    kwargs: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
    }
    # redis-py lets the URL's own user and password win over these.
    if s.username:
        kwargs["username"] = s.username
    if s.password:
        kwargs["password"] = s.password
    if tls:
        if s.tls_ca:
            kwargs["ssl_ca_certs"] = s.tls_ca
        if s.tls_cert:
            kwargs["ssl_certfile"] = s.tls_cert
        if s.tls_key:
            kwargs["ssl_keyfile"] = s.tls_key
    if sentinel.is_sentinel_url(url):
        if cluster:
            raise ValueError("a redis+sentinel:// URL names no Redis Cluster")
        return sentinel.master_client(url, health_check_interval=0, retry=RETRY, **kwargs)
    if cluster:
        return redis.RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, health_check_interval=0, retry=RETRY, **kwargs)
