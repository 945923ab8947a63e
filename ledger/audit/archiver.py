"""The archiver: copies every audit stream into the segments, then acknowledges it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgpack
import redis

from ledger._types import RedisClient
from ledger.audit.segments import GLOBAL_NAME, _Chain, _id_key, _jsonable, day_of
from ledger.errors import LedgerError
from ledger.store.audit_streams import GROUP, _s, firms, register
from ledger.store.keys import Keys

#: Entries read per stream and poll.
BATCH: Final = 1000
#: How long the archiver's lease outlives its last poll.
LEASE_MS: Final = 30_000


class ArchiverBusy(LedgerError):
    """Another archiver, by another name, holds the lease."""


def _decode(fields: dict[Any, Any] | None) -> Any:
    if not fields:
        return None
    blob = fields.get(b"m", fields.get("m"))
    if blob is None:
        return _jsonable(fields)
    return _jsonable(msgpack.unpackb(blob, raw=False, unicode_errors="surrogateescape"))


@dataclass
class Archiver:
    """Copies every audit stream into ``directory``; see :mod:`ledger.audit`.

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
