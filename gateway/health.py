"""``/healthz`` (the process answers), ``/readyz`` (Redis up, scripts loaded), ``/metrics``.

``/readyz`` is also not ready while the server is a read-only replica, or
while fewer live replicas are connected than the durability setting needs.
"""

from __future__ import annotations

from flask import Blueprint, Response

from gateway import get_ledger, metrics
from gateway.wire import respond
from ledger.errors import LedgerUnavailable

__all__ = ["bp"]

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process serves requests. Never touches Redis."""
    return respond({"status": "ok"})


@bp.get("/readyz")
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
def prometheus() -> Response:
    """Prometheus text format; summed over gunicorn workers in multiprocess mode."""
    data, content_type = metrics.exposition()
    return Response(data, status=200, content_type=content_type)
