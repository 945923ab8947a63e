"""The handlers that answer every error as a rejected decision, in the client's format."""

from __future__ import annotations

from enum import Enum
from typing import Any

from flask import Flask, g, render_template, request
from werkzeug.exceptions import HTTPException

import gateway.metrics as metrics
from gateway.errors import ApiCode, ApiError, invalid, invalid_code
from gateway.redact import RedactSecrets
from gateway.wire import respond
from ledger import InvalidInput, LedgerUnavailable, Reason, ReenableRefused, UnknownScope

__all__ = ["handle_api_error", "init_app"]


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
        }.get(code, ApiCode.INTERNAL_ERROR if code >= 500 else invalid_code())
        headers = dict(exc.get_headers())
        headers.pop("Content-Type", None)
        return handle_api_error(
            ApiError(code, reason, exc.description or exc.name, headers=headers)
        )
