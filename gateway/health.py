"""``/healthz`` (the process answers), ``/readyz`` (Redis up, scripts loaded), ``/metrics``.

``/readyz`` is also not ready while the server is a read-only replica, or
while fewer live replicas are connected than the durability setting needs.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

import gateway.ledger_metrics as ledger_metrics
import gateway.metrics as metrics
from gateway.api import api
from gateway.auth import presented
from gateway.connection import get_ledger
from gateway.replies import Status
from gateway.wire import respond
from ledger.errors import LedgerUnavailable

__all__ = ["bp"]

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@api(answers={200: ("The process answers.", Status)})
def healthz() -> Response:
    """Liveness: the process serves requests. Never touches Redis."""
    return respond({"status": "ok"})


@bp.get("/readyz")
@api(answers={200: ("Ready.", Status), 503: ("Redis unavailable.", Status)})
def readyz() -> Response:
    """Readiness: Redis answers, every script is loaded (reloaded if it was missing),
    the server takes writes and enough replicas are live for the durability setting."""
    try:
        ledger = get_ledger()
        ledger.ping()
        # A replica answers PING and holds the scripts, yet refuses every order.
        problem = None if ledger.keys.cluster else ledger._call(ledger.durable.not_ready)
        if problem is not None:
            raise LedgerUnavailable(problem)
    except LedgerUnavailable as exc:
        metrics.get().redis_errors.labels(route="health.readyz").inc()
        return respond(
            {"status": "unavailable", "reason": "RISK_UNAVAILABLE", "message": str(exc)}, 503
        )
    return respond({"status": "ready"})


@bp.get("/metrics")
@api(
    answers={
        200: ("Text exposition format.", "text/plain"),
        401: ("Unknown or revoked token.", None),
    },
    # Optional: without a token the answer is smaller, not refused.
    security=[{}, {"bearer": []}],
)
def prometheus() -> Response:
    """Prometheus metrics; summed over gunicorn workers in multiprocess mode.

    Anyone gets the request metrics, which name no node or firm; the ledger's
    gauges go only to a bearer token of a role in ``ledger_metrics.READERS``
    (monitoring, ops, risk-admin).
    A bad token is 401 (so the scrape fails visibly); a valid one of another role,
    a desk head's say, gets what an anonymous caller gets.
    """
    try:
        principal = presented()
    except LedgerUnavailable as exc:
        # The caller cannot be checked, so no node data; ``ledger_up 0`` is all it learns.
        current_app.logger.warning("metrics: token not checked: %s", exc)
        data, content_type = metrics.exposition(ledger_metrics.unavailable())
    else:
        gauges = principal is not None and principal.role in ledger_metrics.READERS
        data, content_type = metrics.exposition(ledger_metrics.exposition() if gauges else None)
    return Response(data, status=200, content_type=content_type)
