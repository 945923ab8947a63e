"""The audit archive: every audit record copied to hash-chained daily files before it may go.

Archiver
    ``ledger audit archive --dir DIR [--follow]`` reads the global stream
    (``P:audit``) and every firm's (``P:{F}:audit``, firms from ``P:firms``,
    re-read on every poll) with one consumer group, ``archive``, and appends
    each record to ``DIR/<name>/<YYYY-MM-DD>.jsonl``: ``<name>`` is the firm id,
    or ``_global`` (firm ids cannot start with ``_``); the day is the UTC day
    of the entry id, i.e. of the server time the record was written at. A
    segment is gzipped (``.jsonl.gz``) once its day has passed and the stream
    has moved on. Lines are written and fsynced before they are acknowledged
    (XACK), and acknowledged in id order.

Chain
    Each line is ``{"stream", "id", "record", "prev", "hash"}``; ``hash`` is the
    SHA-256 of ``prev`` followed by the canonical JSON of ``[stream, id,
    record]``, and ``prev`` is the previous line's hash in that stream's
    chain (64 zeros for its first line), across segments. An edited, deleted
    or moved line breaks the chain; :func:`verify` names the first break.

Restarts
    On start the archiver reads the chain's last id and hash from each
    stream's newest segment (cutting a line torn by a crash), takes over the
    group's pending entries (XAUTOCLAIM), rereads its own with XREADGROUP id 0,
    acknowledges those already written (a crash between write and XACK) and
    writes the rest. Nothing is skipped (an entry leaves the pending list only
    when acknowledged) and nothing is written twice (ids at or below the
    chain's last are not written again).

One archiver at a time
    Two archivers would split the records between two chains and acknowledge
    out of order. The running one holds ``P:archive:lease`` (its ``--by``
    name, renewed on every poll, expiring after ``LEASE_MS``); another name is
    refused while it is held. The same name takes over at once, which is what a
    restart after a crash needs.

Trimming (lua/includes/common.lua, ``audit``)
    Scripts add with ``MAXLEN ~ audit_maxlen`` as before when the stream has no
    ``archive`` group. With one, the cheapest correct bound is to keep
    ``max(audit_maxlen, backlog + 1)`` records, where the backlog is the
    group's ``lag + pending`` from one ``XINFO GROUPS`` (O(1), Redis >= 7.0):
    the archiver acknowledges in id order, so its unacknowledged records are
    always the newest ``backlog`` ones and the approximate trim (which only
    ever drops fewer records than asked) cannot reach them. This costs one
    extra command per script call, no scan, no extra key, and the stream still
    holds the newest ``audit_maxlen`` records for ``audit tail``. The global
    stream (policy loads, global kills: a few records a day) is written from
    Python and simply not trimmed while an archiver is registered.

``audit.require_archive``
    A policy load with it registers the group on every firm's stream and the
    global one, so nothing is trimmed before the first archiver runs. When a
    firm's backlog reaches ``audit_maxlen``, reserve and replace answer
    ``RISK_UNAVAILABLE`` (not recorded: the trail is what is full) until the
    archiver catches up; fills, releases, cancels and kills still pass and are
    kept (the stream then grows past the bound rather than drop them).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgpack
import redis

from ledger._types import RedisClient
from ledger.errors import LedgerError
from ledger.store.keys import Keys

__all__ = [
    "GROUP",
    "GENESIS",
    "GLOBAL_NAME",
    "Archiver",
    "ArchiverBusy",
    "Break",
    "VerifyReport",
    "StreamLag",
    "archive_lag",
    "backlog",
    "register",
    "global_maxlen",
    "chain_hash",
    "verify",
    "verify_tail",
    "search",
    "segments",
]

#: The consumer group of the archive; scripts look for it by this name (common.lua).
GROUP: Final = "archive"
#: ``prev`` of a chain's first line.
GENESIS: Final = "0" * 64
#: Directory of the global stream; firm ids start with a letter or digit.
GLOBAL_NAME: Final = "_global"
#: Entries read per stream and poll.
BATCH: Final = 1000
#: How long the archiver's lease outlives its last poll.
LEASE_MS: Final = 30_000
_DAY_MS: Final = 86_400_000


class ArchiverBusy(LedgerError):
    """Another archiver, by another name, holds the lease."""


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def day_of(entry_id: str) -> str:
    """The UTC day (``YYYY-MM-DD``) of an entry id's server time."""
    ms = _id_key(entry_id)[0]
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


# -- Redis side ----------------------------------------------------------------------


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


# -- the chain -----------------------------------------------------------------------


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


# -- the archiver --------------------------------------------------------------------


def _decode(fields: dict[Any, Any] | None) -> Any:
    if not fields:
        return None
    blob = fields.get(b"m", fields.get("m"))
    if blob is None:
        return _jsonable(fields)
    return _jsonable(msgpack.unpackb(blob, raw=False, unicode_errors="surrogateescape"))


@dataclass
class Archiver:
    """Copies every audit stream into ``directory``; see the module docstring.

    Args:
        client: the ledger's Redis (``decode_responses`` off).
        keys: its key layout.
        directory: where the segments go.
        consumer: the consumer name in the ``archive`` group (``--by``).
        batch: entries read per stream and poll.
    """

    client: RedisClient
    keys: Keys
    directory: Path
    consumer: str = "archiver"
    batch: int = BATCH
    chains: dict[str, _Chain] = field(default_factory=dict)
    #: Where warnings go (an entry gone from the stream before it was archived).
    warn: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr))

    def streams(self) -> list[tuple[str, str]]:
        """``(directory name, stream key)`` of the global stream and every firm's."""
        k = self.keys
        return [(GLOBAL_NAME, k.audit()), *((f, k.audit(f)) for f in firms(self.client, k))]

    def _chain(self, name: str, stream: str) -> _Chain:
        chain = self.chains.get(stream)
        if chain is None:
            register(self.client, stream)
            chain = _Chain.load(name, stream, self.directory / name)
            self.chains[stream] = chain
        return chain

    def _store(self, chain: _Chain, entries: list[Any]) -> list[Any]:
        """Write the entries not yet in the chain, fsync; the ids to acknowledge."""
        ids = []
        for raw_id, fields in entries:
            entry_id = _s(raw_id)
            ids.append(raw_id)
            if _id_key(entry_id) <= chain.last_id:
                continue  # written before a crash, not acknowledged then
            if not fields:
                # Only a hand-made XDEL/XTRIM can do this; the chain cannot hold it.
                self.warn(f"{chain.stream} {entry_id}: gone from the stream before it was archived")
                continue
            chain.write(entry_id, _decode(fields))
        chain.sync()
        return ids

    def _ack(self, stream: str, ids: list[Any]) -> None:
        if ids:
            self.client.xack(stream, GROUP, *ids)

    def _recover(self, chain: _Chain) -> int:
        """Take over the group's pending entries, then store and acknowledge them in order."""
        r = self.client
        start = "0-0"
        while True:
            # XAUTOCLAIM: entries a consumer of another name read and never acknowledged.
            # (Not JUSTID: redis-py then drops the cursor from the reply.)
            reply = r.xautoclaim(chain.stream, GROUP, self.consumer, 0, start, count=self.batch)
            start = _s(reply[0])
            if start == "0-0":
                break
        after, done, written = "0", 0, chain.written
        while True:
            got = r.xreadgroup(GROUP, self.consumer, {chain.stream: after}, count=self.batch)
            entries = got[0][1] if got else []
            if not entries:
                break
            ids = self._store(chain, entries)
            self._ack(chain.stream, ids)
            done += len(ids)
            after = _s(entries[-1][0])
        chain.recover = False
        if done:
            rewritten = chain.written - written
            self.warn(
                f"archiver: {chain.stream}: took over {done} unacknowledged entries: "
                f"{done - rewritten} already in the archive, {rewritten} written now"
            )
        return done

    def _hold_lease(self) -> None:
        lease = self.keys.archive_lease()
        if self.client.set(lease, self.consumer, nx=True, px=LEASE_MS):
            return
        holder = _s(self.client.get(lease))
        if holder != self.consumer:
            raise ArchiverBusy(
                f"another archiver ({holder}) is running: one archiver at a time "
                f"(its lease, {lease}, lapses {LEASE_MS // 1000} s after it stops)"
            )
        self.client.pexpire(lease, LEASE_MS)

    def step(self) -> int:
        """One poll of every stream: entries read, stored and acknowledged."""
        self._hold_lease()
        total = 0
        for name, stream in self.streams():
            chain = self._chain(name, stream)
            if chain.recover:
                total += self._recover(chain)
            got = self.client.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=self.batch)
            entries = got[0][1] if got else []
            if entries:
                self._ack(stream, self._store(chain, entries))
                total += len(entries)
        return total

    def close_past_days(self) -> None:
        """Compress open segments whose UTC day has passed on the server's clock.

        New entry ids are at least the server time, so no later record of a
        stream can fall on a day before the server's today.
        """
        seconds, micros = self.client.time()
        today = day_of(f"{seconds * 1000 + micros // 1000}-0")
        for chain in self.chains.values():
            if chain.day is not None and chain.day < today:
                chain.close()

    def run(
        self,
        follow: bool = False,
        interval_s: float = 0.5,
        stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Archive until every stream is drained (or, with ``follow``, until ``stop()``).

        Following, a Redis failure is waited out: the chains are re-read from
        the files and the pending entries taken over again once Redis answers.
        """
        total = 0
        try:
            while not stop():
                try:
                    n = self.step()
                    if not n:
                        self.close_past_days()
                except (redis.RedisError, OSError) as exc:
                    if not follow:
                        raise
                    self.warn(f"archiver: {type(exc).__name__}: {exc}; retrying")
                    self._reset()
                    sleep(interval_s)
                    continue
                total += n
                if n:
                    continue
                if not follow:
                    break
                sleep(interval_s)
        finally:
            self.close()
            self._drop_lease()
        return total

    def close(self) -> None:
        """Close the open segment files (fsynced; they stay open for the next run)."""
        for chain in self.chains.values():
            chain.release()

    def _drop_lease(self) -> None:
        """Let another archiver start at once after a clean stop (best effort)."""
        try:
            pool = getattr(self.client, "connection_pool", None)
            if pool is not None:
                # A stop by signal may have left a reply half read on a pooled connection.
                pool.disconnect()
            lease = self.keys.archive_lease()
            if _s(self.client.get(lease)) == self.consumer:
                self.client.delete(lease)
        except redis.RedisError:
            pass

    def _reset(self) -> None:
        for chain in self.chains.values():
            chain.release()
        self.chains.clear()


# -- verify and search ---------------------------------------------------------------


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


def _stream_dirs(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir())


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
