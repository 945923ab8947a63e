"""The gateway's one error type and the handler that answers it.

Order routes answer with the ledger's reason codes (:class:`ledger.reasons.Reason`:
``INVALID_ORDER``, ``RISK_UNAVAILABLE``, ``UNKNOWN_ORDER`` ...). Codes that only
exist at the HTTP layer are :class:`ApiCode`. Every error body has the shape of
a rejected decision, so a client reads ``decision`` and ``reason`` the same way
whatever went wrong.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any

from flask import Flask, g, render_template, request
from werkzeug.exceptions import HTTPException

from gateway import metrics
from gateway.redact import RedactSecrets
from gateway.wire import respond
from ledger.errors import InvalidInput, LedgerUnavailable, ReenableRefused, UnknownScope
from ledger.reasons import Reason

__all__ = ["ApiCode", "ApiError", "init_app"]


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


def _invalid_code() -> Reason | ApiCode:
    if request.blueprint in ("orders", "baskets"):
        return Reason.INVALID_ORDER
    return ApiCode.INVALID_REQUEST


def invalid(message: str) -> ApiError:
    """A 400 with the code of the route: ``INVALID_ORDER`` on order routes."""
    return ApiError(400, _invalid_code(), message)


def handle_api_error(err: ApiError) -> Any:
    if request.blueprint == "orders" and err.status_code not in (401, 403):
        g.reason = err.reason
    if request.blueprint == "dashboard" and request.accept_mimetypes.accept_html:
        return render_template("error.html", error=err), err.status_code, err.headers
    return respond(err.to_dict(), err.status_code, err.headers)


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    # What the app logs (a traceback may quote a URL) is cut of tokens like gunicorn's logs.
    app.logger.addFilter(RedactSecrets())

    @app.errorhandler(LedgerUnavailable)
    def unavailable(exc: LedgerUnavailable) -> Any:
        metrics.get().redis_errors.labels(route=request.endpoint or "-").inc()
        app.logger.warning("ledger unavailable on %s: %s", request.path, exc)
        return handle_api_error(
            ApiError(
                503,
                Reason.RISK_UNAVAILABLE,
                f"the risk ledger is unavailable ({str(exc).split(':')[0]}); the request was "
                "refused (fail closed)",
            )
        )

    @app.errorhandler(InvalidInput)
    def invalid_input(exc: InvalidInput) -> Any:
        return handle_api_error(invalid(str(exc)))

    @app.errorhandler(ReenableRefused)
    def reenable_refused(exc: ReenableRefused) -> Any:
        return handle_api_error(ApiError(403, Reason.REENABLE_REFUSED, str(exc)))

    @app.errorhandler(UnknownScope)
    def unknown_scope(exc: UnknownScope) -> Any:
        return handle_api_error(ApiError(404, Reason.UNKNOWN_NODE, str(exc)))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        reason: str | Enum = {
            404: ApiCode.NOT_FOUND,
            405: ApiCode.METHOD_NOT_ALLOWED,
            413: ApiCode.REQUEST_TOO_LARGE,
        }.get(code, ApiCode.INTERNAL_ERROR if code >= 500 else _invalid_code())
        headers = dict(exc.get_headers())
        headers.pop("Content-Type", None)
        return handle_api_error(
            ApiError(code, reason, exc.description or exc.name, headers=headers)
        )
