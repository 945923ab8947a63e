"""The gateway's one error type: status, reason code and a message for people.

Order routes answer with the ledger's reason codes (:class:`ledger.reasons.Reason`:
``INVALID_ORDER``, ``RISK_UNAVAILABLE``, ``UNKNOWN_ORDER`` ...). Codes that only
exist at the HTTP layer are :class:`ApiCode`. Every error body has the shape of
a rejected decision, so a client reads ``decision`` and ``reason`` the same way
whatever went wrong (:mod:`gateway.error_handlers` answers it).
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any

from flask import g, request

from ledger import Reason

__all__ = ["ApiCode", "ApiError", "invalid", "invalid_code"]


class ApiCode(StrEnum):
    """Reason codes of the HTTP layer (the ledger's own are in :mod:`ledger.reasons`)."""

    #: No bearer token, or one that is unknown or revoked.
    UNAUTHORIZED = "UNAUTHORIZED"
    #: A valid token whose role (or desks) does not cover the request.
    FORBIDDEN = "FORBIDDEN"
    #: A malformed request to a route other than the order routes.
    INVALID_REQUEST = "INVALID_REQUEST"
    #: No such route.
    NOT_FOUND = "NOT_FOUND"
    #: The route exists but not with this method.
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    #: The body is larger than ``MAX_CONTENT_LENGTH``.
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    #: A fault in the gateway itself; nothing was accepted.
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ApiError(Exception):
    """An answer other than success: HTTP status, reason code and a message for people."""

    def __init__(
        self,
        status_code: int,
        reason: str | Enum,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason.value if isinstance(reason, Enum) else reason
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": "rejected",
            "reason": self.reason,
            "scope": None,
            "limit": None,
            "used": None,
            "requested": None,
            "order_id": g.get("order_id"),
            "message": self.message,
        }


def invalid_code() -> Reason | ApiCode:
    """The code of a malformed request on this route: ``INVALID_ORDER`` on order routes."""
    if request.blueprint in ("orders", "baskets"):
        return Reason.INVALID_ORDER
    return ApiCode.INVALID_REQUEST


def invalid(message: str) -> ApiError:
    """A 400 with the code of the route: ``INVALID_ORDER`` on order routes."""
    return ApiError(400, invalid_code(), message)
