"""The archive's files: per stream, daily segments of hash-chained lines."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ledger.store.audit_streams import _s

#: ``prev`` of a chain's first line.
GENESIS: Final = "0" * 64
#: Directory of the global stream; firm ids start with a letter or digit.
GLOBAL_NAME: Final = "_global"


_DAY_MS: Final = 86_400_000


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def day_of(entry_id: str) -> str:
    """The UTC day (``YYYY-MM-DD``) of an entry id's server time."""
    ms = _id_key(entry_id)[0]
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _jsonable(value: Any) -> Any:
    """``value`` as JSON types, so that parsing the written line gives it back exactly."""
    if isinstance(value, dict):
        return {str(_s(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(prev: str, stream: str, entry_id: str, record: Any) -> str:
    """The hash of one line: SHA-256 of ``prev`` and the canonical ``[stream, id, record]``."""
    body = _canonical([stream, entry_id, record])
    return hashlib.sha256((prev + body).encode("ascii")).hexdigest()


def _line(prev: str, stream: str, entry_id: str, record: Any) -> tuple[str, str]:
    h = chain_hash(prev, stream, entry_id, record)
    doc = {"stream": stream, "id": entry_id, "record": record, "prev": prev, "hash": h}
    return _canonical(doc) + "\n", h


# -- segment files -------------------------------------------------------------------


def segments(stream_dir: Path) -> list[Path]:
    """The segment files of one stream, oldest day first; an open ``.jsonl`` wins over a
    ``.jsonl.gz`` of the same day (a crash while compressing leaves both)."""
    by_day: dict[str, Path] = {}
    for path in stream_dir.iterdir() if stream_dir.is_dir() else ():
        name = path.name
        if name.endswith(".jsonl.gz"):
            by_day.setdefault(name[: -len(".jsonl.gz")], path)
        elif name.endswith(".jsonl"):
            by_day[name[: -len(".jsonl")]] = path
    return [by_day[d] for d in sorted(by_day)]


def _read_lines(path: Path) -> list[str]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="ascii", newline="\n") as f:
            return f.read().splitlines()
    return path.read_text(encoding="ascii").splitlines()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _compress(path: Path) -> Path:
    """Gzip a closed segment: write, fsync and rename the ``.gz``, then remove the plain file."""
    target = path.with_name(path.name + ".gz")
    tmp = path.with_name(path.name + ".gz.tmp")
    with path.open("rb") as src, tmp.open("wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            while chunk := src.read(1 << 20):
                gz.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, target)
    path.unlink()
    _fsync_dir(path.parent)
    return target


@dataclass
class _Chain:
    """Where one stream's chain stands: its last id and hash, and the open segment."""

    name: str
    stream: str
    directory: Path
    last_id: tuple[int, int] = (0, 0)
    last_hash: str = GENESIS
    day: str | None = None
    file: Any = None
    dirty: bool = False
    #: Pending entries to re-read before new ones (set on start and after an error).
    recover: bool = True
    written: int = 0

    @classmethod
    def load(cls, name: str, stream: str, directory: Path) -> _Chain:
        """The chain as the newest segment leaves it, repairing what a crash left."""
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.gz.tmp"):
            stale.unlink()
        chain = cls(name, stream, directory)
        found = segments(directory)
        for older in found[:-1]:
            if older.name.endswith(".jsonl"):
                # Left open by a crash on a day change; its day has passed.
                _cut_torn_tail(older)
                _compress(older)
        for path in reversed(segments(directory)):
            plain = path.name.endswith(".jsonl")
            if plain:
                gz = path.with_name(path.name + ".gz")
                if gz.exists():
                    gz.unlink()  # compressed from this file, maybe not whole: redo later
                _cut_torn_tail(path)
            lines = _read_lines(path)
            if plain and chain.day is None:
                # The newest plain segment stays open for appending.
                chain.day = path.name[: -len(".jsonl")]
            if lines:
                last = json.loads(lines[-1])
                chain.last_id = _id_key(last["id"])
                chain.last_hash = last["hash"]
                break
        return chain

    def write(self, entry_id: str, record: Any) -> None:
        day = day_of(entry_id)
        if self.day != day or self.file is None:
            if self.day is not None and self.day != day:
                self.close()
            self.day = day
            path = self.directory / f"{day}.jsonl"
            created = not path.exists()
            self.file = path.open("a", encoding="ascii", newline="\n")
            if created:
                _fsync_dir(self.directory)
        text, self.last_hash = _line(self.last_hash, self.stream, entry_id, record)
        self.file.write(text)
        self.last_id = _id_key(entry_id)
        self.dirty = True
        self.written += 1

    def sync(self) -> None:
        if self.dirty and self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())
        self.dirty = False

    def close(self) -> None:
        """Close and compress the open segment (its day has passed)."""
        if self.file is not None:
            self.sync()
            self.file.close()
            self.file = None
        if self.day is not None:
            path = self.directory / f"{self.day}.jsonl"
            if path.exists():
                _compress(path)
        self.day = None

    def release(self) -> None:
        """Close the open file without compressing it (stop, or an error)."""
        if self.file is not None:
            self.sync()
            self.file.close()
            self.file = None


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline: written by a crash, never acknowledged."""
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.truncate(data.rfind(b"\n") + 1)
        f.flush()
        os.fsync(f.fileno())


def _stream_dirs(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir())
