"""Searching the archive: by order id, time range and author."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.audit.segments import _id_key, _read_lines, _stream_dirs, day_of, segments


def parse_time_ms(value: str) -> int:
    """Milliseconds since the epoch from ms digits or ISO 8601 (UTC unless it says otherwise)."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not ms since the epoch nor an ISO 8601 time") from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def _mentions(record: Any, order_id: str) -> bool:
    return isinstance(record, dict) and record.get("order_id") == order_id


def search(
    directory: Path,
    order_id: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    by: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Archived lines (``stream``, ``id``, ``record`` ...) matching every filter given,
    oldest first within each stream; ``until_ms`` is inclusive."""
    lo = day_of(f"{since_ms}-0") if since_ms is not None else None
    hi = day_of(f"{until_ms}-0") if until_ms is not None else None
    found: list[tuple[tuple[int, int], dict[str, Any]]] = []
    for sdir in _stream_dirs(directory):
        for path in segments(sdir):
            day = path.name.split(".", 1)[0]
            if (lo is not None and day < lo) or (hi is not None and day > hi):
                continue
            for text in _read_lines(path):
                try:
                    doc = json.loads(text)
                    t = _id_key(doc["id"])
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                rec = doc.get("record")
                if order_id is not None and not _mentions(rec, order_id):
                    continue
                if since_ms is not None and t[0] < since_ms:
                    continue
                if until_ms is not None and t[0] > until_ms:
                    continue
                if by is not None and (not isinstance(rec, dict) or rec.get("by") != by):
                    continue
                found.append((t, doc))
    found.sort(key=lambda x: x[0])
    for _, doc in found:
        yield doc
