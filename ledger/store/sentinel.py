"""Redis Sentinel URLs: the client finds the primary, and finds it again after a failover.

``redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]``
(``rediss+sentinel://`` for TLS). The user and password are the data
servers'; the sentinels take the same unless the query gives
``sentinel_username`` / ``sentinel_password``. Other query options:
``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``
(``required``, ``optional``, ``none``).

The client is redis-py's ``Sentinel(...).master_for(service)``: every new
connection asks the sentinels where the primary is, and a connection that
finds its server demoted to a replica (``READONLY``) is dropped with a
``ConnectionError``, so the next call reaches the new primary. Nothing here
ever sends a write to a replica.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

__all__ = [
    "SCHEMES",
    "SentinelURL",
    "is_sentinel_url",
    "parse",
    "master_client",
    "sentinel_clients",
]

SCHEMES: Final = ("redis+sentinel", "rediss+sentinel")
_SSL_OPTIONS: Final = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
_OPTIONS: Final = ("sentinel_username", "sentinel_password", *_SSL_OPTIONS)


@dataclass(frozen=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def redacted(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        scheme = SCHEMES[1] if self.tls else SCHEMES[0]
        auth = "***@" if self.password else ""
        return f"{scheme}://{auth}{hosts}/{self.service}/{self.db}"


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() in SCHEMES


def parse(url: str) -> SentinelURL:
    """Parse a Sentinel URL; ValueError names what is wrong (never the password)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"a Sentinel URL starts with {' or '.join(SCHEMES)}://")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, password = None, None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    sentinels = []
    for item in hostlist.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"each sentinel is host:port, got {item.strip()!r}")
        sentinels.append((host, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("the path is /service_name or /service_name/db")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"the database is a number, got {path[1]!r}")
    options: dict[str, str] = {}
    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if name not in _OPTIONS:
            raise ValueError(f"unknown option {name!r}; known: {', '.join(_OPTIONS)}")
        options[name] = values[-1]
    return SentinelURL(
        tuple(sentinels),
        unquote(path[0]),
        int(path[1]) if len(path) == 2 else 0,
        scheme == SCHEMES[1],
        username,
        password,
        options,
    )


def _tls(url: SentinelURL) -> dict[str, Any]:
    if not url.tls:
        return {}
    out: dict[str, Any] = {"ssl": True}
    for name in _SSL_OPTIONS:
        if name in url.options:
            out[name] = url.options[name]
    return out


def master_client(url: str, **connection_kwargs: Any) -> redis.Redis:
    """A client of the current primary of the URL's service.

    ``connection_kwargs`` (``socket_timeout``, ``retry``...) apply to the data
    connections and, for the timeouts, to the sentinels.
    """
    parsed = parse(url)
    tls = _tls(parsed)
    sentinel_kwargs: dict[str, Any] = {
        "username": parsed.options.get("sentinel_username", parsed.username),
        "password": parsed.options.get("sentinel_password", parsed.password),
        # The next sentinel is the retry: redis-py's default backoff would hold
        # a fail-closed answer for many seconds when the sentinels refuse us.
        "retry": Retry(NoBackoff(), 0),
        **tls,
    }
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in connection_kwargs:
            sentinel_kwargs[name] = connection_kwargs[name]
    # redis-py's sentinel module carries no annotations.
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    data: dict[str, Any] = {"username": parsed.username, "password": parsed.password, **tls}
    for name, value in connection_kwargs.items():
        # The URL's own credentials win, as redis-py's from_url lets them.
        if not (name in ("username", "password") and data.get(name)):
            data[name] = value
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        parsed.service, db=parsed.db, **data
    )
    return client


def sentinel_clients(url: str, timeout_s: float) -> list[redis.Redis]:
    """One client per sentinel of the URL, with its sentinel credentials and TLS, answers decoded.

    For talking to the sentinels themselves (``SENTINEL FAILOVER``, where the
    primary is); no retry, so that a sentinel that is down costs one timeout.
    """
    parsed = parse(url)
    kwargs: dict[str, Any] = {
        "username": parsed.options.get("sentinel_username", parsed.username),
        "password": parsed.options.get("sentinel_password", parsed.password),
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "decode_responses": True,
        "retry": Retry(NoBackoff(), 0),
        **_tls(parsed),
    }
    return [redis.Redis(host=host, port=port, **kwargs) for host, port in parsed.sentinels]
