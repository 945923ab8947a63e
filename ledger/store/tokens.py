"""API tokens for the gateway: created once, stored only as a hash, shared through Redis.

A token is a random string shown once when it is made. Redis keeps only its
HMAC-SHA256 under a server-side secret (``LEDGER_TOKEN_SECRET``, shared by the
gateways and the ``ledger token`` commands, never stored in Redis), so every
gateway instance knows every token with no file to copy, ``revoke`` reaches
every instance within the bound of its token cache (announced below), and a
record written straight into Redis by someone without the secret matches no
token. In the table below
``SHA256`` is that keyed digest (hex).

One key (``P`` is the key prefix, ``ledger`` by default; not firm-tagged and
never touched by an order decision, so one slot holds every token):

=============================  ======  ==================================================
``P:tokens``                   hash    ``t|SHA256`` -> JSON ``{name, role, desks, firms,
                                       created_at_ms}`` per token (sha256 hex of the
                                       token), ``n|NAME`` -> that sha256 (names are unique)
=============================  ======  ==================================================

A revoke is also announced on the pub/sub channel ``P:events`` as
``{"type": "token_revoked", "name", "at_ms"}``, right after the record is
gone: gateways that cache lookups for a short time drop their cache on it
(:mod:`gateway.token_cache`).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, cast

import redis

from ledger._types import RedisClient
from ledger.errors import InvalidInput, LedgerUnavailable
from ledger.policy.model import _ID

__all__ = [
    "Role",
    "Principal",
    "TokenStore",
    "hash_token",
    "token_secret",
    "resolve_secret",
    "TOKEN_PREFIX",
    "SECRET_ENV",
    "INSECURE_DEV_ENV",
]

#: Every token starts with this, so a leaked one is easy to recognise in logs or code.
TOKEN_PREFIX: Final = "llt_"
#: Longest bearer value looked up; anything longer is refused before hashing.
MAX_TOKEN_LENGTH: Final = 200
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
#: The server-side secret every token digest is keyed with.
SECRET_ENV: Final = "LEDGER_TOKEN_SECRET"
#: ``1`` accepts :data:`DEV_SECRET` when no secret is set: development only.
INSECURE_DEV_ENV: Final = "LEDGER_INSECURE_DEV_TOKENS"
#: Public, so tokens keyed with it are as forgeable as plain hashes.
DEV_SECRET: Final = "limit-ledger-insecure-development-token-secret"
MIN_SECRET_LENGTH: Final = 16

log = logging.getLogger(__name__)


class Role(StrEnum):
    """What a token may do."""

    #: Send orders and their replaces, cancels, fills and releases.
    ORDER_ENTRY = "order-entry"
    #: Set and lift kill switches, see kills, utilization and the dashboard.
    OPS = "ops"
    #: See utilization and the dashboard for the desks named on the token.
    DESK_HEAD = "desk-head"
    #: Policy and tokens; sees utilization of every node.
    RISK_ADMIN = "risk-admin"
    #: A price feed: sets reference prices, which may halt a symbol, and nothing else.
    MARKET_DATA = "market-data"
    #: A metrics scraper: reads the ledger's gauges on ``/metrics`` and nothing else.
    MONITORING = "monitoring"


@dataclass(frozen=True)
class Principal:
    """Who a valid token belongs to."""

    name: str
    role: Role
    #: Desk ids a desk-head token is scoped to (empty for other roles).
    desks: frozenset[str] = frozenset()
    created_at_ms: int = 0
    #: Firms the token acts for (empty: not bound, every firm). A desk-head
    #: token's firm comes from its desks instead.
    firms: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "desks": sorted(self.desks),
            "firms": sorted(self.firms),
            "created_at_ms": self.created_at_ms,
        }


def hash_token(token: str, secret: str) -> str:
    """HMAC-SHA256 of ``token`` under ``secret`` (hex): what Redis keeps instead of the token."""
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def resolve_secret(secret: str | None, insecure_dev: bool = False) -> str:
    """The token secret to use; raises InvalidInput naming the variable when there is none.

    Args:
        secret: the configured secret (``LEDGER_TOKEN_SECRET``), if any.
        insecure_dev: accept the public :data:`DEV_SECRET` when ``secret`` is unset.
    """
    if secret:
        if len(secret) < MIN_SECRET_LENGTH:
            raise InvalidInput(SECRET_ENV, f"must be at least {MIN_SECRET_LENGTH} characters")
        return secret
    if insecure_dev:
        return DEV_SECRET
    raise InvalidInput(
        SECRET_ENV,
        "not set. Token digests are keyed with a secret shared by the gateways and the "
        "`ledger token` commands and kept out of Redis; set one of at least "
        f"{MIN_SECRET_LENGTH} characters (e.g. the output of: python -c 'import secrets; "
        f"print(secrets.token_urlsafe(32))'), or {INSECURE_DEV_ENV}=1 for a public "
        "development secret",
    )


def token_secret(env: Mapping[str, str] | None = None) -> str:
    """The secret from ``LEDGER_TOKEN_SECRET`` (or ``LEDGER_INSECURE_DEV_TOKENS=1``)."""
    env = os.environ if env is None else env
    dev = env.get(INSECURE_DEV_ENV, "").strip().lower() in ("1", "true", "yes")
    return resolve_secret(env.get(SECRET_ENV), dev)


def _role(value: object) -> Role:
    if isinstance(value, str) and value in Role._value2member_map_:
        return Role(value)
    raise InvalidInput("role", "must be one of " + ", ".join(r.value for r in Role))


class TokenStore:
    """Tokens of one ledger prefix.

    Args:
        client: a redis-py client (``decode_responses`` off or on).
        prefix: the ledger key prefix, ``ledger`` by default.
        secret: the token secret; :func:`token_secret` (the environment) if None.

    Raises:
        InvalidInput: no secret is given or set, or it is too short.
    """

    def __init__(
        self, client: RedisClient, prefix: str = "ledger", secret: str | None = None
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self._secret = token_secret() if secret is None else resolve_secret(secret)

    @property
    def key(self) -> str:
        return f"{self.prefix}:tokens"

    @property
    def channel(self) -> str:
        """Where a revoke is announced: the events channel (``gateway.events.channel``)."""
        return f"{self.prefix}:events"

    def create(
        self,
        role: str | Role,
        name: str,
        desks: Iterable[str] = (),
        firms: Iterable[str] = (),
    ) -> str:
        """Make a token and return it; this is the only time it can be seen.

        ``firms`` binds the token to those firms: it may reserve only on their
        accounts and touch only their orders.

        Raises:
            InvalidInput: bad role, name, desk or firm, desks given for a role
                other than desk-head (or none for desk-head), firms given for a
                desk-head (its desks decide), or the name is taken.
            LedgerUnavailable: Redis failed.
        """
        the_role = _role(role)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidInput("name", "must be 1-64 characters of letters, digits and ._@-")
        desk_set = frozenset(desks)
        for desk in desk_set:
            if not isinstance(desk, str) or not _ID.fullmatch(desk):
                raise InvalidInput("desk", f"{desk!r} is not a desk id")
        if the_role is Role.DESK_HEAD and not desk_set:
            raise InvalidInput("desk", "a desk-head token needs at least one desk")
        if the_role is not Role.DESK_HEAD and desk_set:
            raise InvalidInput("desk", "only desk-head tokens are scoped to desks")
        firm_set = frozenset(firms)
        for firm in firm_set:
            if not isinstance(firm, str) or not _ID.fullmatch(firm):
                raise InvalidInput("firm", f"{firm!r} is not a firm id")
        if the_role is Role.DESK_HEAD and firm_set:
            raise InvalidInput("firm", "a desk-head token's firm comes from its desks")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = hash_token(token, self._secret)
        record = json.dumps(
            {
                "name": name,
                "role": the_role.value,
                "desks": sorted(desk_set),
                "firms": sorted(firm_set),
                "created_at_ms": int(time.time() * 1000),
            },
            sort_keys=True,
        )
        try:
            # One MULTI on one key: the name is claimed and the record written
            # together; if the name was taken, the unseen new record is dropped.
            pipe = self.redis.pipeline(transaction=True)
            pipe.hsetnx(self.key, f"n|{name}", digest)
            pipe.hsetnx(self.key, f"t|{digest}", record)
            claimed, _ = pipe.execute()
            if not claimed:
                self.redis.hdel(self.key, f"t|{digest}")
        except redis.RedisError as exc:
            raise LedgerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not claimed:
            raise InvalidInput("name", f"a token named {name!r} exists; revoke it first")
        return token

    def revoke(self, name: str) -> bool:
        """Remove the named token at once; False if there was none.

        The removal is then announced on :attr:`channel`, so that gateways
        caching lookups drop them now rather than when their cache expires.
        A refused announcement (a Redis user without the channel) is logged:
        the token is gone all the same, and a cache expires within its bound.
        """
        try:
            digest = self.redis.hget(self.key, f"n|{name}")
            if digest is None:
                return False
            digest = digest.decode() if isinstance(digest, bytes) else digest
            event = json.dumps(
                {"type": "token_revoked", "name": name, "at_ms": int(time.time() * 1000)},
                sort_keys=True,
            )
            # One round trip, in this order: a gateway that reads the token again
            # on the announcement finds it gone.
            pipe = self.redis.pipeline(transaction=False)
            pipe.hdel(self.key, f"n|{name}", f"t|{digest}")
            pipe.publish(self.channel, event)
            deleted, announced = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise LedgerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(deleted, Exception):
            raise LedgerUnavailable(f"{type(deleted).__name__}: {deleted}")
        if isinstance(announced, Exception):
            log.warning(
                "token %s revoked but not announced on %s: %s", name, self.channel, announced
            )
        return True

    def list(self) -> builtins.list[Principal]:
        """Every token's owner, role and desks (never the token), sorted by name."""
        try:
            raw = cast("dict[bytes | str, bytes | str]", self.redis.hgetall(self.key))
        except redis.RedisError as exc:
            raise LedgerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        records = [
            v for k, v in raw.items() if (k.decode() if isinstance(k, bytes) else k)[:2] == "t|"
        ]
        return sorted((_principal(r) for r in records), key=lambda p: p.name)

    def digest(self, token: str) -> str | None:
        """The keyed digest a token is stored under; None for a malformed one."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        return hash_token(token, self._secret)

    def lookup(self, token: str) -> Principal | None:
        """The owner of ``token``, or None if it is unknown, revoked or malformed."""
        digest = self.digest(token)
        return None if digest is None else self.lookup_digest(digest)

    def lookup_digest(self, digest: str) -> Principal | None:
        """The owner of the token stored under ``digest`` (:meth:`digest`), or None."""
        try:
            raw = cast("bytes | str | None", self.redis.hget(self.key, f"t|{digest}"))
        except redis.RedisError as exc:
            raise LedgerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return None if raw is None else _principal(raw)


def _principal(raw: bytes | str) -> Principal:
    rec = json.loads(raw)
    return Principal(
        rec["name"],
        Role(rec["role"]),
        frozenset(rec.get("desks", ())),
        int(rec.get("created_at_ms", 0)),
        frozenset(rec.get("firms", ())),
    )
