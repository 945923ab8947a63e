"""Read-only views: utilization for desk heads, the audit trail, the invariant check."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import redis

from ledger.keys import Keys
from ledger.policy import Node, Policy
from ledger.results import UtilizationRow

__all__ = ["utilization", "audit_tail", "check", "CheckReport", "Aggregates"]

_AGG = ("ob", "os", "fb", "fs", "n")
#: The message-window ring geometry of lua/includes/windows.lua.
_SLOTS = 11
_WINDOWS = (("per_second", 1000), ("per_10s", 10000))


@dataclass
class Aggregates:
    ob: int = 0
    os: int = 0
    fb: int = 0
    fs: int = 0
    n: int = 0

    @property
    def gross(self) -> int:
        return self.ob + self.os + self.fb + self.fs

    @property
    def net(self) -> int:
        f = self.fb - self.fs
        return max(abs(f + self.ob), abs(f - self.os))


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _ring_fields(scope: str, mtype: str, window_ms: int) -> list[str]:
    base = f"{scope}|m|{mtype}|{window_ms}|"
    return [base + "h"] + [f"{base}{i}" for i in range(_SLOTS)]


def _ring_count(values: list[Any], window_ms: int, now_ms: int) -> int:
    # Same arithmetic as ring_count in lua/includes/windows.lua.
    if values[0] is None:
        return 0
    head = int(values[0])
    cur = max(now_ms // (window_ms // 10), head)
    total = 0
    for k in range(_SLOTS):
        idx = head - ((head - k) % _SLOTS)
        if idx > cur - _SLOTS:
            total += _int(values[k + 1])
    return total


def utilization(client: redis.Redis, keys: Keys, policy: Policy, scope: str) -> list[UtilizationRow]:
    """Per node under ``scope`` and per limit: used against limit, from one atomic snapshot."""
    nodes = policy.subtree(scope)
    by_firm: dict[str, list[Node]] = defaultdict(list)
    for node in nodes:
        by_firm[node.firm].append(node)
    rows: list[UtilizationRow] = []
    for firm, firm_nodes in by_firm.items():
        fields: list[str] = []
        for node in firm_nodes:
            fields += [f"{node.scope}|{a}" for a in _AGG]
            for mtype in node.limits.messages:
                for _, window_ms in _WINDOWS:
                    fields += _ring_fields(node.scope, mtype, window_ms)
        pipe = client.pipeline(transaction=True)
        pipe.time()
        pipe.hmget(keys.agg(firm), fields)
        (seconds, micros), values = pipe.execute()
        now_ms = seconds * 1000 + micros // 1000
        at = 0
        for node in firm_nodes:
            agg = Aggregates(*(_int(v) for v in values[at : at + 5]))
            at += 5
            rows += _node_rows(node, agg)
            for mtype, caps in node.limits.messages.items():
                for name, window_ms in _WINDOWS:
                    count = _ring_count(values[at : at + _SLOTS + 1], window_ms, now_ms)
                    at += _SLOTS + 1
                    cap = getattr(caps, name)
                    if cap:
                        rows.append(UtilizationRow(node.scope, f"messages.{mtype}.{name}", count, cap,
                                                   "messages" in node.limits.shadow))
    return rows


def _node_rows(node: Node, agg: Aggregates) -> list[UtilizationRow]:
    lim = node.limits
    rows = []
    for name, used, cap in (
        ("max_gross_notional", agg.gross, lim.max_gross_notional),
        ("max_net_notional", agg.net, lim.max_net_notional),
        ("max_open_orders", agg.n, lim.max_open_orders),
    ):
        if cap is not None:
            rows.append(UtilizationRow(node.scope, name, used, cap, name in lim.shadow))
    return rows


def aggregates(client: redis.Redis, keys: Keys, firm: str) -> dict[str, Aggregates]:
    out: dict[str, Aggregates] = defaultdict(Aggregates)
    for field, value in client.hgetall(keys.agg(firm)).items():
        scope, _, name = field.decode().rpartition("|")
        if name in _AGG and "|m|" not in field.decode():
            setattr(out[scope], name, int(value))
    return dict(out)


def audit_tail(client: redis.Redis, keys: Keys, firms: Iterable[str], count: int) -> list[dict[str, Any]]:
    """The newest ``count`` audit records over the global and every firm stream, oldest first."""
    streams = [keys.audit()] + [keys.audit(f) for f in firms]
    pipe = client.pipeline(transaction=False)
    for s in streams:
        pipe.xrevrange(s, count=count)
    merged = []
    for stream, entries in zip(streams, pipe.execute(), strict=True):
        for entry_id, fields in entries:
            record = msgpack.unpackb(fields[b"m"], raw=False)
            record["entry_id"] = entry_id.decode()
            record["stream"] = stream
            merged.append(record)
    merged.sort(key=lambda r: tuple(int(p) for p in r["entry_id"].split("-")))
    return merged[-count:] if count else merged


def audit_json(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=lambda b: b.decode() if isinstance(b, bytes) else str(b))


@dataclass
class CheckReport:
    """What ``ledger check`` found; ``ok`` is False if any breach was named."""

    breaches: list[str] = field(default_factory=list)
    nodes: int = 0
    orders: int = 0

    @property
    def ok(self) -> bool:
        return not self.breaches


def _order_sums(client: redis.Redis, keys: Keys, firm: str) -> tuple[dict[str, Aggregates], int]:
    fields = ("st", "firm", "desk", "account", "strategy", "trader", "side", "res", "fn")
    sums: dict[str, Aggregates] = defaultdict(Aggregates)
    count = 0
    pattern = keys.order(firm, "*")
    batch: list[bytes] = []

    def flush() -> None:
        nonlocal count
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.hmget(key, fields)
        for values in pipe.execute():
            st, *path, side, res, fn = (v.decode() if v is not None else None for v in values)
            if st in (None, "rejected"):
                continue
            count += 1
            buy = side == "buy"
            for kind, node_id in zip(("firm", "desk", "account", "strategy", "trader"), path, strict=True):
                agg = sums[f"{kind}:{node_id}"]
                if buy:
                    agg.ob += _int(res)
                    agg.fb += _int(fn)
                else:
                    agg.os += _int(res)
                    agg.fs += _int(fn)
                agg.n += st == "open"
        batch.clear()

    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            flush()
    flush()
    return dict(sums), count


def check(client: redis.Redis, keys: Keys, policy: Policy | None, firms: list[str], attempts: int = 5) -> CheckReport:
    """Every node's aggregates equal the sums over its orders; no enforced budget is exceeded.

    The order scan is not atomic with trading; a firm whose aggregates change
    during the scan is scanned again, up to ``attempts`` times.
    """
    report = CheckReport()
    for firm in firms:
        for _ in range(attempts):
            before = aggregates(client, keys, firm)
            sums, count = _order_sums(client, keys, firm)
            after = aggregates(client, keys, firm)
            if before == after:
                break
        else:
            report.breaches.append(f"firm:{firm}: aggregates kept changing during {attempts} scans")
            continue
        report.orders += count
        for scope in sorted(set(after) | set(sums)):
            have, want = after.get(scope, Aggregates()), sums.get(scope, Aggregates())
            report.nodes += 1
            if have != want:
                report.breaches.append(f"{scope}: aggregates {have} != sum of its orders {want}")
            node = policy.node(scope) if policy else None
            if node is None:
                continue
            for row in _node_rows(node, have):
                if row.used > row.limit and not row.shadow:
                    report.breaches.append(f"{scope}: {row.limit_name} used {row.used} > limit {row.limit}")
    return report
