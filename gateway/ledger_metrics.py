"""Gauges of the ledger's state, read from Redis when ``/metrics`` is scraped.

A custom collector rather than gauges set by workers: under gunicorn the
multiprocess collector adds up what every worker wrote, which would multiply
a utilization by the number of workers. These values are read once per scrape
by the process that answers it (:mod:`ledger.ops.monitor`: two pipelined round
trips, no scan), and a snapshot is reused for ``LEDGER_METRICS_CACHE_MS``
(default 500) so that several Prometheus servers scraping one gateway cost
Redis no more.

If Redis does not answer within the gateway's bound, ``ledger_up`` is 0 and
no other ledger series is exported: orders are being refused then too.

These labels name firms and nodes, so ``/metrics`` exports the gauges only to
a scrape presenting a token of a role in :data:`READERS`; anyone else gets the
request metrics alone (:func:`gateway.health.prometheus`).

Labels and their bounds (all come from the policy or Redis, never a request):
``firm``, ``scope`` (policy nodes and ``global``), ``limit`` (limit names of
the policy, ``messages.TYPE.WINDOW``), ``shadow``, ``symbol`` (tier symbols and
halted symbols), ``state``, ``source``, ``auto``, ``stream`` (``global`` and
firms), ``role``, ``replica`` (``ip:port`` per connected replica).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from flask import Flask, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import gateway.history as history
from gateway.connection import get_ledger
from ledger.errors import LedgerUnavailable
from ledger.ops.monitor import Monitor, Snapshot
from ledger.store.tokens import Role

__all__ = ["LedgerCollector", "init_app", "exposition", "unavailable", "READERS"]

#: Roles whose token on a scrape gets the ledger's gauges.
READERS = (Role.MONITORING, Role.OPS, Role.RISK_ADMIN)

_LIMIT = ["firm", "scope", "limit", "shadow"]


class LedgerCollector(Collector):
    """Reads the ledger at collect time; one per app, keeping the last snapshot briefly."""

    def __init__(self, app: Flask, cache_ms: int) -> None:
        self._app = app
        self._cache_s = cache_ms / 1000
        self._lock = threading.Lock()
        self._monitor: Monitor | None = None
        self._snapshot: tuple[float, Snapshot | None] | None = None
        self._sampled_at = float("-inf")

    def snapshot(self) -> Snapshot | None:
        """The ledger's state, or None when Redis could not be read."""
        with self._lock:
            now = time.monotonic()
            if self._snapshot is not None and now - self._snapshot[0] < self._cache_s:
                return self._snapshot[1]
            lg = get_ledger()
            if self._monitor is None or self._monitor.client is not lg.redis:
                self._monitor = Monitor(lg.redis, lg.keys)
            snap: Snapshot | None
            try:
                with lg._redis_errors():
                    snap = self._monitor.read()
            except LedgerUnavailable as exc:
                self._app.logger.warning("metrics: ledger unavailable: %s", exc)
                snap = None
            every_ms = int(self._app.config["DASHBOARD_SAMPLE_MS"])
            if snap is not None and now - self._sampled_at >= every_ms / 1000:
                # Scrapes keep the dashboard's last hour whole when nobody watches it;
                # this process asks for the sampling claim once per interval, not per scrape.
                self._sampled_at = now
                try:
                    history.sample(lg, every_ms)
                except LedgerUnavailable as exc:
                    self._app.logger.warning("dashboard history: ledger unavailable: %s", exc)
            self._snapshot = (time.monotonic(), snap)
            return snap

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.snapshot()
        yield GaugeMetricFamily(
            "ledger_up",
            "1 when the ledger's Redis answered the last metrics read, else 0.",
            1 if snap else 0,
        )
        if snap is None:
            return
        yield from _families(snap)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _families(snap: Snapshot) -> Iterator[GaugeMetricFamily]:
    if snap.policy_rev is not None:
        yield GaugeMetricFamily(
            "ledger_policy_revision", "Revision of the loaded policy.", snap.policy_rev
        )
    used = _gauge(
        "ledger_limit_used",
        "Use of a limit at a node: minor units for money limits, counts for orders and messages.",
        _LIMIT,
    )
    in_force = _gauge(
        "ledger_limit_in_force",
        "The limit a decision applies now, as utilization reports it: the policy's, or an "
        "override in force, money limits times the smallest stress factor on every path "
        "through the node.",
        _LIMIT,
    )
    policy = _gauge("ledger_limit_policy", "The limit as the policy sets it.", _LIMIT)
    ratio = _gauge(
        "ledger_limit_utilization_ratio", "ledger_limit_used / ledger_limit_in_force.", _LIMIT
    )
    for row in snap.limits:
        labels = [row.firm, row.scope, row.limit, "true" if row.shadow else "false"]
        used.add_metric(labels, row.used)
        in_force.add_metric(labels, row.in_force)
        policy.add_metric(labels, row.policy)
        ratio.add_metric(labels, row.ratio)
    yield from (used, in_force, policy, ratio)

    kills = _gauge(
        "ledger_kill_switch_active",
        "1 per active kill switch (firm empty for global; auto=true when set by a system: "
        "trigger).",
        ["firm", "scope", "auto"],
    )
    for k in snap.kills:
        kills.add_metric([k.firm, k.scope, "true" if k.auto else "false"], 1)
    yield kills
    yield GaugeMetricFamily(
        "ledger_kill_switches_active", "Number of active kill switches.", len(snap.kills)
    )

    halted = _gauge(
        "ledger_symbol_halted",
        "1 per symbol halted by the feed-anomaly breaker.",
        ["firm", "symbol"],
    )
    for firm, symbol in snap.halts:
        halted.add_metric([firm, symbol], 1)
    yield halted

    states = _gauge(
        "ledger_scope_state",
        "1 per strategy or account not enabled (state disabled or reduce_only; source runtime "
        "or policy).",
        ["firm", "scope", "state", "source"],
    )
    for s in snap.states:
        states.add_metric([s.firm, s.scope, s.state, s.source], 1)
    yield states

    age = _gauge(
        "ledger_reference_price_age_seconds",
        "Age of a tier symbol's reference price by server time (absent: no price at all).",
        ["firm", "symbol"],
    )
    stale = _gauge(
        "ledger_reference_price_stale",
        "1 when a tier symbol's reference price is missing or older than max_age_ms: its "
        "orders are refused.",
        ["firm", "symbol"],
    )
    for p in snap.prices:
        if p.age_ms is not None:
            age.add_metric([p.firm, p.symbol], p.age_ms / 1000)
        stale.add_metric([p.firm, p.symbol], 1 if p.stale else 0)
    max_age = _gauge(
        "ledger_reference_price_max_age_seconds",
        "The policy's reference_prices.max_age_ms, per firm with tiers.",
        ["firm"],
    )
    for firm, ms in snap.max_age_ms.items():
        max_age.add_metric([firm], ms / 1000)
    yield from (age, stale, max_age)

    lag = _gauge(
        "ledger_audit_archive_lag_records",
        "Audit records the archive consumer group has not acknowledged, per stream.",
        ["stream"],
    )
    for a in snap.archive_lag:
        lag.add_metric([a.stream], a.records)
    yield lag

    rep = snap.replication
    if rep is not None:
        role = _gauge("ledger_redis_role", "1 for the role of the ledger's Redis.", ["role"])
        role.add_metric([rep.role], 1)
        yield role
        yield GaugeMetricFamily(
            "ledger_redis_connected_replicas",
            "Replicas connected to the ledger's Redis.",
            rep.connected_replicas,
        )
        lag_s = _gauge(
            "ledger_redis_replica_lag_seconds",
            "Seconds since each replica last acknowledged the replication stream.",
            ["replica"],
        )
        behind = _gauge(
            "ledger_redis_replica_behind_bytes",
            "Bytes of replication stream each replica has not confirmed.",
            ["replica"],
        )
        for replica, seconds in rep.replica_lag_s.items():
            lag_s.add_metric([replica], seconds)
            behind.add_metric([replica], rep.replica_behind_bytes.get(replica, 0))
        yield from (lag_s, behind)
        if rep.primary_link_up is not None:
            yield GaugeMetricFamily(
                "ledger_redis_primary_link_up",
                "On a replica: 1 while its link to the primary is up.",
                1 if rep.primary_link_up else 0,
            )


def init_app(app: Flask) -> None:
    cache_ms = app.config.get("METRICS_CACHE_MS", 500)
    if isinstance(cache_ms, bool) or not isinstance(cache_ms, int) or cache_ms < 0:
        raise ValueError(
            f"LEDGER_METRICS_CACHE_MS must be an integer of at least 0, got {cache_ms!r}"
        )
    app.extensions["ledger_metrics"] = LedgerCollector(app, cache_ms)


def exposition() -> bytes:
    """The ledger's gauges in the text format, read by this process only."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(current_app.extensions["ledger_metrics"])
    return generate_latest(registry)


def unavailable() -> bytes:
    """``ledger_up 0`` alone: for a scrape whose token could not be checked because Redis
    failed. It says no more than ``/readyz`` does, and keeps the Redis alert precise."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Down())
    return generate_latest(registry)


class _Down(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "ledger_up",
            "1 when the ledger's Redis answered the last metrics read, else 0.",
            0,
        )
