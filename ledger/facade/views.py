"""Read-only views: utilization for desk heads, the audit trail, the invariant check."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from ledger._types import RedisClient
from ledger.facade.effective import Controls, Limit, read_controls
from ledger.facade.results import UtilizationRow
from ledger.facade.stress import format_factor
from ledger.policy.model import Node, Policy
from ledger.store.keys import Keys
from ledger.store.policy_store import ring_id

__all__ = [
    "utilization",
    "audit_tail",
    "check",
    "CheckReport",
    "Aggregates",
    "unpack_node",
    "day_pnl",
    "ring_count",
]

#: The message-window ring geometry of lua/includes/windows.lua.
_SLOTS = 11


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


def unpack_node(blob: bytes | None) -> tuple[Aggregates, dict[int, list[int]]]:
    """A node field of the aggregate hash (lua/includes/exposure.lua); rings by ring id."""
    if blob is None:
        return Aggregates(), {}
    values = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    rings: Any = values[5] if len(values) > 5 else {}
    if isinstance(rings, list):  # ids 1..n packed as an array
        rings = dict(enumerate(rings, start=1))
    return Aggregates(*(int(v) for v in values[:5])), rings


def day_pnl(blob: bytes | None, day: int) -> int:
    """The node's realized P&L of trading day ``day`` (lua/includes/day.lua)."""
    if blob is None:
        return 0
    values = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    if len(values) > 7 and values[6] == day:
        return int(values[7])
    return 0


def ring_count(ring: list[int] | None, window_ms: int, now_ms: int) -> int:
    # Same arithmetic as ring_count in lua/includes/windows.lua.
    if not ring:
        return 0
    head, total = int(ring[0]), int(ring[1])
    cur = now_ms // (window_ms // 10)
    if cur <= head:
        return total
    if cur - head >= _SLOTS:
        return 0
    for idx in range(head - _SLOTS + 1, cur - _SLOTS + 1):
        total -= int(ring[(idx % _SLOTS) + 2])
    return total


def utilization(
    client: RedisClient, keys: Keys, policy: Policy, scope: str
) -> list[UtilizationRow]:
    """Per node under ``scope`` and per limit: used against limit, from one atomic snapshot."""
    nodes = policy.subtree(scope)
    by_firm: dict[str, list[Node]] = defaultdict(list)
    for node in nodes:
        by_firm[node.firm].append(node)
    rows: list[UtilizationRow] = []
    for firm, firm_nodes in by_firm.items():
        # One HMGET of one hash: an atomic snapshot of the firm's nodes.
        blobs = client.hmget(keys.agg(firm), [n.scope for n in firm_nodes])
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        today = policy.controls.trading_day.day_of(now_ms)
        controls = read_controls(client, keys, firm, now_ms)
        for node, blob in zip(firm_nodes, blobs, strict=True):
            agg, rings = unpack_node(blob)
            rows += _node_rows(node, agg, policy, controls)
            cap = node.limits.max_daily_loss
            if cap is not None:
                loss = max(0, -day_pnl(blob, today))
                shadow = "max_daily_loss" in node.limits.shadow
                in_force = controls.limit(policy, node, "max_daily_loss", cap)
                rows.append(_row(node, "max_daily_loss", loss, shadow, in_force))
            for mtype, caps in node.limits.messages.items():
                for name, window_ms, cap in caps.windows():
                    ring = rings.get(ring_id(mtype, window_ms))
                    count = ring_count(ring, window_ms, now_ms)
                    rows.append(
                        UtilizationRow(
                            node.scope,
                            f"messages.{mtype}.{name}",
                            count,
                            cap,
                            "messages" in node.limits.shadow,
                        )
                    )
    return rows


def _row(node: Node, name: str, used: int, shadow: bool, limit: Limit) -> UtilizationRow:
    return UtilizationRow(
        node.scope, name, used, limit.value, shadow, limit.policy, limit.override, limit.factor
    )


def _node_rows(
    node: Node, agg: Aggregates, policy: Policy, controls: Controls
) -> list[UtilizationRow]:
    """The node's exposure rows against the limits in force (:mod:`ledger.facade.effective`)."""
    lim = node.limits
    rows = []
    for name, used, cap in (
        ("max_gross_notional", agg.gross, lim.max_gross_notional),
        ("max_net_notional", agg.net, lim.max_net_notional),
        ("max_open_orders", agg.n, lim.max_open_orders),
    ):
        if cap is not None:
            in_force = controls.limit(policy, node, name, cap)
            rows.append(_row(node, name, used, name in lim.shadow, in_force))
    return rows


def aggregates(client: RedisClient, keys: Keys, firm: str) -> dict[str, Aggregates]:
    """Every node's aggregates of one firm, by scope."""
    return {
        field.decode(): unpack_node(blob)[0]
        for field, blob in client.hgetall(keys.agg(firm)).items()
    }


def audit_tail(
    client: RedisClient, keys: Keys, firms: Iterable[str], count: int
) -> list[dict[str, Any]]:
    """The newest ``count`` audit records over the global and every firm stream, oldest first."""
    streams = [keys.audit()] + [keys.audit(f) for f in firms]
    pipe = client.pipeline(transaction=False)
    for s in streams:
        pipe.xrevrange(s, count=count)
    merged = []
    for stream, entries in zip(streams, pipe.execute(), strict=True):
        for entry_id, fields in entries:
            # Scripts write false for "no value" (a nil would end a Lua table).
            record: dict[str, Any] = {
                k: (None if v is False else v)
                for k, v in msgpack.unpackb(fields[b"m"], raw=False).items()
            }
            record["entry_id"] = entry_id.decode()
            record.setdefault("t", int(record["entry_id"].split("-")[0]))
            record["stream"] = stream
            merged.append(record)
    merged.sort(key=lambda r: tuple(int(p) for p in r["entry_id"].split("-")))
    return merged[-count:] if count else merged


def audit_json(record: dict[str, Any]) -> str:
    return json.dumps(
        record, sort_keys=True, default=lambda b: b.decode() if isinstance(b, bytes) else str(b)
    )


@dataclass
class CheckReport:
    """What ``ledger check`` found; ``ok`` is False if any breach was named."""

    breaches: list[str] = field(default_factory=list)
    nodes: int = 0
    orders: int = 0
    #: The limits found exceeded, each against the limit in force and the policy's.
    over: list[UtilizationRow] = field(default_factory=list)
    #: Per node, its open orders that reconciliation recorded without the checks
    #: (``ledger reconcile --apply``): named in a breach of that node.
    reconciled: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.breaches


_LEVELS = ("firm", "desk", "account", "strategy", "trader")


def _order_sums(
    client: RedisClient, keys: Keys, firm: str, reconciled: dict[str, int] | None = None
) -> tuple[dict[str, Aggregates], dict[str, list[int]], int]:
    """Per node, and per node and symbol (the positions hash), the sums over the firm's orders;
    open reconciled orders are counted per node into ``reconciled``."""
    fields = ("st", "o", "res", "fn", "qty", "cum", "rc")
    sums: dict[str, Aggregates] = defaultdict(Aggregates)
    positions: dict[str, list[int]] = defaultdict(lambda: [0] * 7)
    count = 0
    pattern = keys.order(firm, "*")
    batch: list[bytes] = []

    def flush() -> None:
        nonlocal count
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.hmget(key, fields)
        for st, shape, res, fn, qty, cum, rc in pipe.execute():
            if st in (None, b"rejected"):
                continue
            count += 1
            shape = msgpack.unpackb(shape, raw=False)
            path, symbol, side = shape[:5], shape[5], shape[6]
            buy = side == "buy"
            leaves = max(_int(qty) - _int(cum), 0) if st == b"open" else 0
            side_ix = 0 if buy else 1
            for kind, node_id in zip(_LEVELS, path, strict=True):
                pos = positions[f"{kind}:{node_id}|{symbol}"]
                pos[side_ix] += _int(res)
                pos[2 + side_ix] += _int(fn)
                pos[4 + side_ix] += leaves
                pos[6] += _int(cum) if buy else -_int(cum)
                agg = sums[f"{kind}:{node_id}"]
                if buy:
                    agg.ob += _int(res)
                    agg.fb += _int(fn)
                else:
                    agg.os += _int(res)
                    agg.fs += _int(fn)
                agg.n += st == b"open"
                if rc and st == b"open" and reconciled is not None:
                    scope = f"{kind}:{node_id}"
                    reconciled[scope] = reconciled.get(scope, 0) + 1
        batch.clear()

    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            flush()
    flush()
    return dict(sums), dict(positions), count


def check(
    client: RedisClient, keys: Keys, policy: Policy | None, firms: list[str], attempts: int = 5
) -> CheckReport:
    """Every node's aggregates equal the sums over its orders; no enforced budget is exceeded.

    Open sums must equal the open orders' exactly. Filled sums must be at least
    the kept orders': closed orders are deleted after ``retention.closed_orders``.

    The order scan is not atomic with trading; a firm whose aggregates change
    during the scan is scanned again, up to ``attempts`` times.
    """
    report = CheckReport()
    for firm in firms:
        for _ in range(attempts):
            before = aggregates(client, keys, firm)
            marked: dict[str, int] = {}
            sums, positions, count = _order_sums(client, keys, firm, marked)
            after = aggregates(client, keys, firm)
            if before == after:
                break
        else:
            report.breaches.append(f"firm:{firm}: aggregates kept changing during {attempts} scans")
            continue
        report.orders += count
        report.reconciled.update(marked)
        seconds, micros = client.time()
        controls = read_controls(client, keys, firm, seconds * 1000 + micros // 1000)
        stored = {
            _text(f): list(msgpack.unpackb(v, raw=False))
            for f, v in client.hgetall(keys.positions(firm)).items()
        }
        for name in sorted(set(stored) | set(positions)):
            have_pos, want_pos = stored.get(name, [0] * 7), positions.get(name, [0] * 7)
            if not _position_holds(have_pos, want_pos):
                report.breaches.append(
                    f"{name}: position {have_pos} != sum of its orders {want_pos}"
                )
        for scope in sorted(set(after) | set(sums)):
            have, want = after.get(scope, Aggregates()), sums.get(scope, Aggregates())
            report.nodes += 1
            if not _aggregates_hold(have, want):
                report.breaches.append(f"{scope}: aggregates {have} != sum of its orders {want}")
            node = policy.node(scope) if policy else None
            if node is None:
                continue
            for row in _node_rows(node, have, policy, controls) if policy else ():
                if row.used > row.limit and not row.shadow:
                    report.over.append(row)
                    report.breaches.append(
                        f"{scope}: {row.limit_name} used {row.used} > limit {row.limit}"
                        + _in_force(row)
                        + (
                            f"; {marked[scope]} reconciled order(s) open on it"
                            if scope in marked
                            else ""
                        )
                    )
    return report


def _aggregates_hold(have: Aggregates, kept: Aggregates) -> bool:
    """Open sums equal the open orders'; filled sums are at least the kept orders' (a
    closed order deleted after its retention took its fills along, the node kept them)."""
    return (have.ob, have.os, have.n) == (kept.ob, kept.os, kept.n) and (
        have.fb >= kept.fb and have.fs >= kept.fs
    )


def _position_holds(have: list[int], kept: list[int]) -> bool:
    """As :func:`_aggregates_hold` for a position: open notional and qty exact; filled
    notional at least the kept orders'; the signed filled qty exact while no filled order
    was deleted (both filled sums then agree too)."""
    opens = [0, 1, 4, 5]
    if [have[i] for i in opens] != [kept[i] for i in opens]:
        return False
    if have[2] < kept[2] or have[3] < kept[3]:
        return False
    return have[6] == kept[6] or (have[2], have[3]) != (kept[2], kept[3])


def _in_force(row: UtilizationRow) -> str:
    """Where a limit in force differs from the policy's: the policy value and why."""
    why = [f"override {row.override}"] if row.override else []
    if row.factor is not None:
        why.append(f"stress {format_factor(row.factor)}")
    return f" (policy {row.policy_limit}; {', '.join(why)})" if why else ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
