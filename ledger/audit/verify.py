"""Verifying the archive: every chain recomputed, and its tail against the stream in Redis."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from ledger._types import RedisClient
from ledger.audit.segments import (
    GENESIS,
    GLOBAL_NAME,
    _id_key,
    _read_lines,
    _stream_dirs,
    chain_hash,
    segments,
)
from ledger.store.audit_streams import GROUP, _s, firms
from ledger.store.keys import Keys


@dataclass(frozen=True)
class Break:
    """The first place a chain does not hold: file, 1-based line, and what."""

    file: str
    line: int
    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}: {self.detail}"


@dataclass(frozen=True)
class VerifyReport:
    streams: int
    segments: int
    records: int
    first_break: Break | None

    @property
    def ok(self) -> bool:
        return self.first_break is None

    def to_dict(self) -> dict[str, Any]:
        b = self.first_break
        return {
            "ok": self.ok,
            "streams": self.streams,
            "segments": self.segments,
            "records": self.records,
            "break": None
            if b is None
            else {"file": b.file, "line": b.line, "what": b.what, "detail": b.detail},
        }


def verify(directory: Path) -> VerifyReport:
    """Recompute every chain under ``directory``; the first break, if any."""
    streams = n_segments = records = 0
    for sdir in _stream_dirs(directory):
        files = segments(sdir)
        if not files:
            continue
        streams += 1
        prev, last_id, stream = GENESIS, (0, 0), None
        for path in files:
            n_segments += 1
            lines = _read_lines(path)
            for i in range(len(lines)):
                found = _check_line(path, lines, i, prev, last_id, stream)
                if isinstance(found, Break):
                    return VerifyReport(streams, n_segments, records, found)
                prev, last_id, stream = found
                records += 1
    return VerifyReport(streams, n_segments, records, None)


def _acknowledged_up_to(client: RedisClient, stream: str) -> tuple[int, int] | None:
    """The newest id the ``archive`` group has acknowledged (with every id before it)."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None
    group = next((g for g in groups if _s(g.get("name")) == GROUP), None)
    if group is None:
        return None
    if not group.get("pending"):
        last = _id_key(_s(group["last-delivered-id"]))
        return None if last == (0, 0) else last
    # Acknowledged in order: everything before the oldest pending entry.
    oldest = _s(client.xpending(stream, GROUP)["min"])
    before = client.xrevrange(stream, max="(" + oldest, min="-", count=1)
    return _id_key(_s(before[0][0])) if before else None


def verify_tail(client: RedisClient, keys: Keys, directory: Path) -> Break | None:
    """Lines missing at the end of a chain, which the chain alone cannot show: each
    stream's archive must reach the newest entry its ``archive`` group acknowledged."""
    for name, stream in [
        (GLOBAL_NAME, keys.audit()),
        *((f, keys.audit(f)) for f in firms(client, keys)),
    ]:
        acked = _acknowledged_up_to(client, stream)
        if acked is None:
            continue
        files = segments(directory / name)
        last_id, where, count = (0, 0), directory / name, 0
        for path in reversed(files):
            lines = _read_lines(path)
            if lines:
                last_id, where, count = _id_key(json.loads(lines[-1])["id"]), path, len(lines)
                break
        if last_id < acked:
            shown = "-".join(map(str, acked))
            return Break(
                str(where),
                count + 1,
                "deleted/missing",
                f"the archive of {stream} ends before entry {shown}, which the archiver "
                "acknowledged: lines were removed from its end",
            )
    return None


def _check_line(
    path: Path,
    lines: list[str],
    i: int,
    prev: str,
    last_id: tuple[int, int],
    stream: str | None,
) -> Break | tuple[str, tuple[int, int], str]:
    def brk(what: str, detail: str) -> Break:
        return Break(str(path), i + 1, what, detail)

    try:
        doc = json.loads(lines[i])
        line_stream, entry_id, record = doc["stream"], doc["id"], doc["record"]
        line_prev, line_hash = doc["prev"], doc["hash"]
        this_id = _id_key(entry_id)
    except (ValueError, KeyError, TypeError, AttributeError):
        return brk("edited", "not a well-formed archive line")
    if chain_hash(line_prev, line_stream, entry_id, record) != line_hash:
        return brk("edited", f"entry {entry_id}: its content does not match its hash")
    if stream is not None and line_stream != stream:
        return brk("edited", f"entry {entry_id} names stream {line_stream}, not {stream}")
    if line_prev != prev:
        # The line that should come here, if it is further down, was moved.
        later = any(_prev_of(t) == prev for t in lines[i + 1 :])
        if later or this_id <= last_id:
            return brk("reordered", f"entry {entry_id} is out of its place in the chain")
        where = "the segment before was cut short" if i == 0 else "the line before was edited"
        return brk(
            "deleted/missing",
            f"entry {entry_id} does not follow the chain: a record is missing before it "
            f"(or {where})",
        )
    if this_id <= last_id:
        return brk("reordered", f"entry {entry_id} does not come after the line before it")
    return line_hash, this_id, line_stream


def _prev_of(text: str) -> str | None:
    try:
        value = json.loads(text).get("prev")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
