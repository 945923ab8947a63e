"""The dashboard's last hour: utilization samples per node, rejects per node, as SVG sparklines.

Utilization has no history in the ledger, so the gateway keeps a small one:
every ``DASHBOARD_SAMPLE_MS`` (default 30 s) one gateway process, whichever
serves the dashboard or a ``/metrics`` scrape first after the interval (a
``SET NX PX`` claim, so several instances and workers do not sample twice),
reads the utilization of every node once (the same reads as
``GET /v1/utilization?scope=global``) and appends one entry to the Redis
stream ``P:dashboard:history``: the server time and, per node, its highest
utilization of an enforced limit in thousandths. The stream is capped
(``MAXLEN ~`` one hour of samples) and expires an hour after the last sample,
so its cost is fixed: about ``nodes x 12`` bytes per entry, 120 entries at
the default interval (a 200-node policy: about 300 kB). Where neither the
dashboard nor ``/metrics`` is read, nothing is sampled and the line has gaps;
with Prometheus scraping every few seconds (deploy/prometheus) it is whole.

Rejects need no store of their own: they are counted from the audit records
the dashboard already reads (``AUDIT_SCAN``), in five-minute buckets per node
on the order's path (firm, desk, account, strategy, trader), so a busy
ledger's tail may reach back less than an hour; the page says how far it
reaches.

Each desk head sees only the lines of nodes it sees (:mod:`gateway.scoping`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from ledger.facade.client import Ledger
from ledger.facade.results import UtilizationRow

__all__ = ["HOUR_MS", "BUCKETS", "Spark", "sample", "read", "utilization_spark", "reject_spark"]

HOUR_MS = 3_600_000
#: Reject buckets over the hour (five minutes each).
BUCKETS = 12
#: Sparkline drawing box (SVG user units).
WIDTH, HEIGHT = 120, 24
_PATH = ("firm", "desk", "account", "strategy", "trader")


def _key(lg: Ledger) -> str:
    return f"{lg.keys.prefix}:dashboard:history"


def server_ms(lg: Ledger) -> int:
    seconds, micros = lg.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def peaks(rows: Iterable[UtilizationRow]) -> dict[str, int]:
    """Per node: its highest utilization of an enforced limit, in thousandths (capped at 2x)."""
    out: dict[str, int] = {}
    for row in rows:
        if row.shadow:
            continue
        permille = min(2000, row.used * 1000 // row.limit if row.limit else 0)
        out[row.scope] = max(out.get(row.scope, 0), permille)
    return out


def sample(lg: Ledger, every_ms: int) -> bool:
    """Append one sample if none was taken in the last ``every_ms``; True when this call took it."""
    key = _key(lg)
    with lg._redis_errors():
        if not lg.redis.set(f"{key}:claim", 1, nx=True, px=every_ms):
            return False
        rows = lg.utilization("global")
        at = server_ms(lg)
        blob = msgpack.packb({"t": at, "u": peaks(rows)}, use_bin_type=True)
        pipe = lg.redis.pipeline(transaction=False)
        pipe.xadd(key, {"m": blob}, maxlen=max(2, HOUR_MS // every_ms + 1), approximate=True)
        pipe.pexpire(key, HOUR_MS)
        pipe.execute()
    return True


def read(lg: Ledger, now_ms: int) -> list[tuple[int, dict[str, int]]]:
    """The samples of the last hour, oldest first: ``(server ms, {scope: thousandths})``."""
    with lg._redis_errors():
        entries = lg.redis.xrevrange(_key(lg), count=HOUR_MS // 1000)
    out = []
    for _, fields in reversed(entries):
        doc = msgpack.unpackb(fields[b"m"], raw=False)
        if now_ms - HOUR_MS <= int(doc["t"]) <= now_ms:
            out.append((int(doc["t"]), {str(k): int(v) for k, v in doc["u"].items()}))
    return out


@dataclass(frozen=True)
class Spark:
    """One inline sparkline: SVG points (or bars), and the words beside it."""

    points: str
    bars: list[tuple[float, float, float]]
    label: str
    samples: int
    #: The newest point, marked so that a single sample shows too.
    last: tuple[float, float] | None = None


def _x(at_ms: int, now_ms: int) -> float:
    # 2 units of margin each side: the newest point's marker stays inside the box.
    return round(2 + (WIDTH - 4) * (at_ms - (now_ms - HOUR_MS)) / HOUR_MS, 1)


def utilization_spark(scope: str, samples: list[tuple[int, dict[str, int]]], now_ms: int) -> Spark:
    """A line of the node's peak utilization, 0 % at the bottom, 100 % (or more) at the top."""
    pts = [
        (_x(at, now_ms), round(HEIGHT - HEIGHT * min(values[scope], 1000) / 1000, 1))
        for at, values in samples
        if scope in values
    ]
    last = next((v[scope] for _, v in reversed(samples) if scope in v), None)
    now = "no sample yet" if last is None else f"{last / 10:.1f}% now"
    points = " ".join(f"{x},{y}" for x, y in pts)
    return Spark(points, [], f"utilization 1 h: {now}", len(pts), pts[-1] if pts else None)


def reject_counts(records: Iterable[Mapping[str, Any]], now_ms: int) -> dict[str, list[int]]:
    """Per node on each reject's path: rejects per five-minute bucket over the last hour."""
    out: dict[str, list[int]] = {}
    span = HOUR_MS // BUCKETS
    for r in records:
        t = r.get("t")
        if not isinstance(t, int) or not now_ms - HOUR_MS < t <= now_ms:
            continue
        bucket = min(BUCKETS - 1, (t - (now_ms - HOUR_MS)) // span)
        for kind in _PATH:
            node_id = r.get(kind)
            if isinstance(node_id, str):
                out.setdefault(f"{kind}:{node_id}", [0] * BUCKETS)[bucket] += 1
    return out


def reject_spark(counts: list[int] | None) -> Spark:
    """Bars of rejects per five minutes, scaled to the busiest bucket."""
    counts = counts or [0] * BUCKETS
    top = max(counts)
    step = WIDTH / BUCKETS
    bars = [
        (round(i * step + 0.5, 1), round(HEIGHT - HEIGHT * n / top, 1), round(HEIGHT * n / top, 1))
        for i, n in enumerate(counts)
        if n and top
    ]
    total = sum(counts)
    return Spark("", bars, f"rejects 1 h: {total}", len(bars))
