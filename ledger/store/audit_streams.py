"""The audit streams' archive group in Redis: registering it, its backlog, the trim it sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import redis

from ledger._types import RedisClient
from ledger.store.keys import Keys

#: The consumer group of the archive; scripts look for it by this name (common.lua).
GROUP: Final = "archive"


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def register(client: RedisClient, stream: str) -> bool:
    """Create the ``archive`` group on ``stream`` from its start; True if it was created.

    From then on the stream keeps every record the archiver has not acknowledged.
    """
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


def backlog(client: RedisClient, stream: str) -> int | None:
    """Records of ``stream`` not yet archived; None when no archiver is registered on it."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None  # no such key: nothing written yet, no group
    for g in groups:
        if _s(g.get("name")) == GROUP:
            lag = g.get("lag")
            if lag is None:
                # As the scripts do: after an XDEL the lag is unknown.
                return int(client.xlen(stream))
            return int(lag) + int(g.get("pending", 0))
    return None


def global_maxlen(client: RedisClient, keys: Keys, audit_maxlen: int) -> int | None:
    """MAXLEN of an XADD to the global stream: None (no trim) once an archiver is registered."""
    return None if backlog(client, keys.audit()) is not None else audit_maxlen


@dataclass(frozen=True)
class StreamLag:
    """One audit stream: its firm (None: global), length, and records not yet archived."""

    stream: str
    firm: str | None
    length: int
    #: None when no archiver is registered on the stream.
    backlog: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "firm": self.firm,
            "length": self.length,
            "archiver": self.backlog is not None,
            "backlog": self.backlog,
        }


def firms(client: RedisClient, keys: Keys) -> list[str]:
    return sorted(_s(m) for m in client.smembers(keys.firms()))


def archive_lag(client: RedisClient, keys: Keys) -> list[StreamLag]:
    """Archive lag of the global stream and of every firm's (``Ledger.archive_lag``)."""
    out = []
    for firm in [None, *firms(client, keys)]:
        stream = keys.audit(firm)
        out.append(StreamLag(stream, firm, int(client.xlen(stream)), backlog(client, stream)))
    return out
