"""Reading the audit streams forward from a tail: what ``ledger audit tail --follow`` prints.

Every audit stream (global and per firm) is read with ``XRANGE`` from just
after the newest record already shown from it, so nothing is printed twice
and nothing appended in between is missed. Each read touches one key, so it
works unchanged on Redis Cluster.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ledger.facade.client import Ledger

__all__ = ["AuditFollower"]

#: Records read per stream and poll.
BATCH = 1000


def _entry_key(entry_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in entry_id.split("-"))


class AuditFollower:
    """Cursors over every audit stream, starting after ``shown``, the tail of ``count``.

    A stream with nothing in the tail starts after the oldest record shown:
    had it held anything newer, the tail would have shown it. A tail shorter
    than ``count`` showed everything, so such a stream starts at its beginning.
    """

    def __init__(self, ledger: Ledger, shown: list[dict[str, Any]], count: int) -> None:
        self.ledger = ledger
        self.floor = shown[0]["entry_id"] if shown and len(shown) >= count else "0-0"
        self.cursors = {r["stream"]: r["entry_id"] for r in shown}
        #: True when the last poll left records unread (a stream filled a whole batch).
        self.behind = False

    def streams(self) -> list[str]:
        lg = self.ledger
        raw = lg.redis.smembers(lg.keys.firms())
        firms = sorted(f.decode() if isinstance(f, bytes) else f for f in raw)
        return [lg.keys.audit()] + [lg.keys.audit(f) for f in firms]

    def poll(self) -> list[dict[str, Any]]:
        """Records appended since the last poll, oldest first, decoded as ``audit_tail`` does."""
        streams = self.streams()
        pipe = self.ledger.redis.pipeline(transaction=False)
        for s in streams:
            pipe.xrange(s, min="(" + self.cursors.get(s, self.floor), max="+", count=BATCH)
        fresh: list[dict[str, Any]] = []
        self.behind = False
        for stream, entries in zip(streams, pipe.execute(), strict=True):
            self.behind = self.behind or len(entries) >= BATCH
            for entry_id, fields in entries:
                record = msgpack.unpackb(fields[b"m"], raw=False)
                record["entry_id"] = self.cursors[stream] = entry_id.decode()
                record["stream"] = stream
                fresh.append(record)
        return sorted(fresh, key=lambda r: _entry_key(r["entry_id"]))
