"""Bearer tokens: who is asking, and may they.

Tokens live in Redis as hashes (:mod:`ledger.store.tokens`), so every instance knows
every token; each worker caches its lookups within a bound and drops them
when a revoke is announced (:mod:`gateway.token_cache`). Only the dashboard
also takes the token as a ``token`` query parameter or cookie, because a
browser cannot easily set a header; it then keeps it in an HttpOnly cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

import gateway.metrics as metrics
from gateway.connection import get_ledger, get_token_cache
from gateway.errors import ApiCode, ApiError
from ledger.store.tokens import Principal, Role

__all__ = ["authenticate", "requires", "caller_firms", "presented", "COOKIE"]

#: Cookie the dashboard keeps its token in.
COOKIE = "ledger_token"
F = TypeVar("F", bound=Callable[..., Any])


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _fail(
    status: int, code: ApiCode, message: str, headers: dict[str, str] | None = None
) -> ApiError:
    metrics.get().auth_failures.labels(status=str(status)).inc()
    return ApiError(status, code, message, headers=headers)


def authenticate(roles: tuple[Role, ...], *, browser: bool = False) -> Principal:
    """The caller's principal, or a 401 (no or bad token) / 403 (role not in ``roles``)."""
    token = _bearer()
    g.token_from_query = False
    if token is None and browser:
        token = request.args.get("token") or request.cookies.get(COOKIE)
        g.token_from_query = bool(request.args.get("token"))
    if not token:
        raise _fail(
            401,
            ApiCode.UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer TOKEN)",
            {"WWW-Authenticate": 'Bearer realm="ledger"'},
        )
    principal = _lookup(token)
    if principal.role not in roles:
        raise _fail(
            403,
            ApiCode.FORBIDDEN,
            f"role {principal.role.value} may not do this; it needs "
            + " or ".join(r.value for r in roles),
        )
    g.principal = principal
    g.token = token
    return principal


def presented() -> Principal | None:
    """The principal of the bearer token presented, None if there is none; 401 if it is bad.

    For routes whose answer only grows with the role (``/metrics``): no token
    is not an error there, but a wrong one is, so that a misconfigured scraper
    sees a failed scrape rather than silently partial data.

    Raises:
        LedgerUnavailable: the token could not be looked up.
    """
    token = _bearer()
    return None if token is None else _lookup(token)


def _lookup(token: str) -> Principal:
    """The token's principal; 401 for a token no one holds (unknown or revoked)."""
    principal = get_token_cache().lookup(token)
    if principal is None:
        raise _fail(
            401,
            ApiCode.UNAUTHORIZED,
            "unknown or revoked token",
            {"WWW-Authenticate": 'Bearer realm="ledger", error="invalid_token"'},
        )
    return principal


def requires(*roles: Role) -> Callable[[F], F]:
    """Route decorator: authenticate with one of ``roles`` before anything else runs."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            authenticate(roles)
            return view(*args, **kwargs)

        wrapper.roles = roles  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def caller_firms(principal: Principal) -> frozenset[str] | None:
    """The firms a caller acts for; None for a token bound to no firm (every firm).

    A desk-head token's firms are those of its desks. Order routes pass this to
    the ledger, so a bound token never reaches another firm's account or order.
    """
    if principal.firms:
        return principal.firms
    if principal.role is Role.DESK_HEAD:
        lg = get_ledger()
        firms = (lg.firm_of(f"desk:{desk}") for desk in principal.desks)
        return frozenset(f for f in firms if f is not None)
    return None
