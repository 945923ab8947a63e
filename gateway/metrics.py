"""Prometheus metrics of the gateway.

Under gunicorn every worker is its own process: with ``PROMETHEUS_MULTIPROC_DIR``
set (``gateway/gunicorn.conf.py`` sets one), prometheus-client writes each
worker's values to files there and ``/metrics`` adds them up. Each app keeps
its metrics in its own registry (``app.extensions["metrics"]``), never in the
process-wide default one.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

import gateway.ledger_metrics as ledger_metrics

__all__ = ["Metrics", "init_app", "get", "exposition"]

#: Seconds; a decision is one Redis round trip, so most land in the first buckets.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.decisions = Counter(
            "ledger_gateway_decisions_total",
            "Answers of the order routes by operation, result and reason code.",
            ["op", "result", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "ledger_gateway_request_seconds",
            "Time to answer an order route, from request to response, by operation.",
            ["op"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.kills = Counter(
            "ledger_gateway_kill_switch_total",
            "Kill switches set (op=kill) and lifted (op=unkill) through the gateway, "
            "counting only changes of state.",
            ["op", "kind"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "ledger_gateway_redis_errors_total",
            "Requests refused because Redis was unreachable, slow or answered an error.",
            ["route"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "ledger_gateway_auth_failures_total",
            "Requests refused for a missing or bad token (401) or a role that does not cover"
            " them (403).",
            ["status"],
            registry=registry,
        )
        # Labelled children by label values: ``labels()`` builds and locks on every call.
        self._latency_of: dict[str, Any] = {}
        self._decisions_of: dict[tuple[str, str, str], Any] = {}

    def order_answered(self, op: str, seconds: float, result: str, reason: str | None) -> None:
        """An order route's answer: its latency, and its decision (``reason``) if it had one."""
        latency = self._latency_of.get(op)
        if latency is None:
            latency = self._latency_of.setdefault(op, self.latency.labels(op=op))
        latency.observe(seconds)
        if reason is not None:
            key = (op, result, reason)
            decisions = self._decisions_of.get(key)
            if decisions is None:
                decisions = self._decisions_of.setdefault(
                    key, self.decisions.labels(op=op, result=result, reason=reason)
                )
            decisions.inc()


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def init_app(app: Flask) -> None:
    app.extensions["metrics"] = Metrics(CollectorRegistry(auto_describe=True))
    ledger_metrics.init_app(app)


def get() -> Metrics:
    metrics: Metrics = current_app.extensions["metrics"]
    return metrics


def exposition(ledger: bytes | None = None) -> tuple[bytes, str]:
    """The text format of the request metrics, summed over worker processes in multiprocess mode.

    Args:
        ledger: the ledger's gauges to append (:mod:`gateway.ledger_metrics`, read by this
            process alone, never summed), or None for the request metrics only: those carry
            no node or firm, so anyone may read them.
    """
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = get().registry
    return generate_latest(registry) + (ledger or b""), CONTENT_TYPE_LATEST
