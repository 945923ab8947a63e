"""What an operator alerts on, read from Redis in one bounded snapshot.

:func:`read` costs two pipelined round trips whatever the traffic, and never
a ``SCAN`` or ``KEYS``:

1. ``SMEMBERS P:firms``, the policy revision, the global kill, ``INFO
   replication`` and the global audit stream's ``XLEN`` / ``XINFO GROUPS``;
2. per firm: ``HGETALL`` of its ``agg``, ``kills``, ``controls`` and
   ``prices`` hashes, ``XLEN`` / ``XINFO GROUPS`` of its audit stream, then
   ``TIME`` (after the prices, so that an age is never below zero).

The policy document itself is read only when its revision changed
(:class:`Monitor` keeps it). Every series is bounded by the policy: one per
node and limit, per tier symbol, per active kill or state, per audit stream,
per replica.

The limit in force is :mod:`ledger.facade.effective`'s rule and code, applied to the
controls hash of step 2, so that a gauge and ``utilization`` always agree.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import msgpack

import ledger.store.policy_store as policy_store
from ledger._types import RedisClient
from ledger.facade.effective import Controls, controls_of
from ledger.facade.views import day_pnl, ring_count, unpack_node
from ledger.policy.model import Node, Policy
from ledger.store.keys import Keys
from ledger.store.policy_store import ring_id

__all__ = [
    "ARCHIVE_GROUP",
    "LimitRow",
    "KillRow",
    "StateRow",
    "PriceRow",
    "ArchiveLag",
    "Replication",
    "Snapshot",
    "Monitor",
    "read",
]

#: The consumer group of the audit archiver; its unacknowledged records are the archive lag.
ARCHIVE_GROUP = "archive"


@dataclass(frozen=True)
class LimitRow:
    """One limit of one node: ``used`` against the limit in force now."""

    firm: str
    scope: str
    limit: str
    used: int
    #: The policy's value after an override in force and stress (money limits),
    #: as :meth:`ledger.facade.effective.Controls.limit` has it.
    in_force: int
    policy: int
    shadow: bool

    @property
    def ratio(self) -> float:
        # A limit of zero admits nothing: any use is beyond it, none is full.
        if self.in_force <= 0:
            return 1.0
        return self.used / self.in_force


@dataclass(frozen=True)
class KillRow:
    #: Empty for the global kill.
    firm: str
    scope: str
    auto: bool


@dataclass(frozen=True)
class StateRow:
    firm: str
    scope: str
    #: ``disabled`` or ``reduce_only``.
    state: str
    #: ``runtime`` (set by ops or a trigger) or ``policy``.
    source: str


@dataclass(frozen=True)
class PriceRow:
    firm: str
    symbol: str
    #: None when the firm has no price for the symbol.
    age_ms: int | None
    max_age_ms: int

    @property
    def stale(self) -> bool:
        return self.age_ms is None or self.age_ms > self.max_age_ms


@dataclass(frozen=True)
class ArchiveLag:
    #: ``global`` or the firm id.
    stream: str
    records: int


@dataclass(frozen=True)
class Replication:
    #: ``primary`` or ``replica``.
    role: str
    connected_replicas: int
    #: ``ip:port`` -> seconds since the replica's last acknowledgement (primary only).
    replica_lag_s: dict[str, int] = field(default_factory=dict)
    #: ``ip:port`` -> bytes of replication stream the replica has not confirmed.
    replica_behind_bytes: dict[str, int] = field(default_factory=dict)
    #: On a replica: whether its link to the primary is up.
    primary_link_up: bool | None = None


@dataclass(frozen=True)
class Snapshot:
    now_ms: int
    policy_rev: int | None
    limits: list[LimitRow]
    kills: list[KillRow]
    halts: list[tuple[str, str]]
    states: list[StateRow]
    prices: list[PriceRow]
    #: Max age per firm whose policy sets one.
    max_age_ms: dict[str, int]
    archive_lag: list[ArchiveLag]
    replication: Replication | None


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _unpack(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)


class Monitor:
    """Reads snapshots for one client and prefix, keeping the policy between revisions."""

    def __init__(self, client: RedisClient, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._policy: tuple[int, Policy] | None = None
        self._lock = threading.Lock()

    def read(self) -> Snapshot:
        """One snapshot; redis-py errors propagate (the caller reports the ledger down)."""
        k, client = self.keys, self.client
        pipe = client.pipeline(transaction=False)
        pipe.smembers(k.firms())
        pipe.hget(k.policy_doc(), "rev")
        pipe.get(k.global_kill())
        pipe.hget(k.global_kill_meta(), "by")
        pipe.info("replication")
        _stream_reads(pipe, k.audit())
        firms_raw, rev_raw, global_kill, global_by, info, xlen, groups = pipe.execute(
            raise_on_error=False
        )
        for value in (firms_raw, rev_raw, global_kill, global_by, info, xlen):
            if isinstance(value, Exception):
                raise value
        rev = int(rev_raw) if rev_raw is not None else None
        policy = self._policy_of(rev)
        firms = sorted({_s(f) for f in firms_raw} | set(policy.firms if policy else ()))

        pipe = client.pipeline(transaction=False)
        for firm in firms:
            pipe.hgetall(k.agg(firm))
            pipe.hgetall(k.kills(firm))
            pipe.hgetall(k.controls(firm))
            pipe.hgetall(k.prices(firm))
            _stream_reads(pipe, k.audit(firm))
        pipe.time()
        raw = pipe.execute(raise_on_error=False)
        for i, value in enumerate(raw):
            # XINFO GROUPS of a stream not yet written answers an error: no group, no lag.
            if isinstance(value, Exception) and i % 6 != 5:
                raise value
        seconds, micros = raw[-1]
        now_ms = int(seconds) * 1000 + int(micros) // 1000

        kills: list[KillRow] = []
        if global_kill is not None:
            kills.append(KillRow("", "global", _s(global_by or "").startswith("system:")))
        lags = _archive_lag("global", xlen, groups)
        limits: list[LimitRow] = []
        halts: list[tuple[str, str]] = []
        states: list[StateRow] = []
        prices: list[PriceRow] = []
        max_age: dict[str, int] = {}
        by_firm = _nodes_by_firm(policy)
        for i, firm in enumerate(firms):
            agg, kill_map, controls, price_map, f_xlen, f_groups = raw[6 * i : 6 * i + 6]
            kills += [
                KillRow(firm, _s(scope), _unpack(blob).get("auto") == 1)
                for scope, blob in kill_map.items()
            ]
            ctl = {_s(f): _unpack(v) for f, v in controls.items()}
            px = {_s(f): v for f, v in price_map.items()}
            lags += _archive_lag(firm, f_xlen, f_groups)
            halts += [(firm, name[2:]) for name in sorted(px) if name.startswith("h|")]
            states += _states(firm, ctl, by_firm.get(firm, []))
            if policy is not None:
                effective = controls_of(controls, now_ms)
                limits += _limits(policy, by_firm.get(firm, []), agg, effective)
                rp = policy.controls.reference_prices
                if rp is not None and policy.controls.tiers:
                    max_age[firm] = rp.max_age_ms
                    prices += _prices(firm, policy, px, rp.max_age_ms, now_ms)
        return Snapshot(
            now_ms,
            rev,
            limits,
            sorted(kills, key=lambda r: (r.firm, r.scope)),
            halts,
            states,
            prices,
            max_age,
            lags,
            _replication(info),
        )

    def _policy_of(self, rev: int | None) -> Policy | None:
        with self._lock:
            if rev is None:
                self._policy = None
            elif self._policy is None or self._policy[0] != rev:
                self._policy = policy_store.fetch(self.client, self.keys)
            return self._policy[1] if self._policy else None


def read(client: RedisClient, keys: Keys) -> Snapshot:
    """One snapshot without keeping the policy (tests, one-off reads)."""
    return Monitor(client, keys).read()


def _stream_reads(pipe: Any, stream: str) -> None:
    pipe.xlen(stream)
    pipe.xinfo_groups(stream)


def _archive_lag(name: str, xlen: Any, groups: Any) -> list[ArchiveLag]:
    """Records of ``name``'s stream the ``archive`` group has not acknowledged."""
    if isinstance(groups, Exception):
        return []
    for group in groups:
        if _s(group.get("name")) != ARCHIVE_GROUP:
            continue
        pending = int(group.get("pending") or 0)
        # ``lag`` (Redis 7, Valkey) counts entries never delivered to the group and
        # survives trimming; it is nil when the server cannot tell, and then every
        # record still in the stream is counted as not archived (the safe side).
        lag = group.get("lag")
        undelivered = int(lag) if lag is not None else int(xlen)
        return [ArchiveLag(name, undelivered + pending)]
    return []


def _nodes_by_firm(policy: Policy | None) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for node in policy.nodes.values() if policy else ():
        out.setdefault(node.firm, []).append(node)
    return out


def _states(firm: str, ctl: dict[str, Any], nodes: list[Node]) -> list[StateRow]:
    rows = [
        StateRow(firm, name[2:], _s(rec.get("st")), "runtime")
        for name, rec in sorted(ctl.items())
        if name.startswith("s|") and isinstance(rec, dict)
    ]
    runtime = {r.scope for r in rows}
    rows += [
        StateRow(firm, n.scope, n.state, "policy")
        for n in nodes
        if n.state != "enabled" and n.scope not in runtime
    ]
    return rows


def _limits(
    policy: Policy, nodes: list[Node], agg: dict[Any, Any], controls: Controls
) -> list[LimitRow]:
    now_ms = controls.now_ms
    blobs = {_s(f): v for f, v in agg.items()}
    today = policy.controls.trading_day.day_of(now_ms)
    rows: list[LimitRow] = []
    for node in nodes:
        blob = blobs.get(node.scope)
        state, rings = unpack_node(blob)
        lim = node.limits
        used_by = {
            "max_gross_notional": state.gross,
            "max_net_notional": state.net,
            "max_open_orders": state.n,
            "max_daily_loss": max(0, -day_pnl(blob, today)),
        }
        for name, used in used_by.items():
            cap = getattr(lim, name)
            if cap is not None:
                rows.append(
                    LimitRow(
                        node.firm,
                        node.scope,
                        name,
                        used,
                        controls.limit(policy, node, name, cap).value,
                        cap,
                        name in lim.shadow,
                    )
                )
        for mtype, caps in lim.messages.items():
            for window, window_ms, cap in caps.windows():
                if cap:
                    count = ring_count(rings.get(ring_id(mtype, window_ms)), window_ms, now_ms)
                    rows.append(
                        LimitRow(
                            node.firm,
                            node.scope,
                            f"messages.{mtype}.{window}",
                            count,
                            cap,
                            cap,
                            "messages" in lim.shadow,
                        )
                    )
    return rows


def _prices(
    firm: str, policy: Policy, px: dict[str, Any], max_age_ms: int, now_ms: int
) -> list[PriceRow]:
    """Every tier symbol: orders in it are refused while its price is missing or old."""
    rows = []
    symbols = sorted(s for tier in policy.controls.tiers.values() for s in tier.symbols)
    for symbol in symbols:
        blob = px.get(symbol)
        age = now_ms - int(_unpack(blob)["t"]) if blob else None
        rows.append(PriceRow(firm, symbol, age, max_age_ms))
    return rows


def _replication(info: Any) -> Replication | None:
    if not isinstance(info, dict) or "role" not in info:
        return None
    role = "primary" if info["role"] == "master" else "replica"
    lag: dict[str, int] = {}
    behind: dict[str, int] = {}
    offset = int(info.get("master_repl_offset") or 0)
    for name, value in info.items():
        # redis-py parses ``slaveN:ip=..,port=..,offset=..,lag=..`` into a dict.
        if name.startswith("slave") and isinstance(value, dict) and "ip" in value:
            replica = f"{value['ip']}:{value['port']}"
            lag[replica] = int(value.get("lag", 0))
            behind[replica] = max(0, offset - int(value.get("offset", 0)))
    link = None
    if role == "replica":
        link = info.get("master_link_status") == "up"
    return Replication(role, int(info.get("connected_slaves") or 0), lag, behind, link)
