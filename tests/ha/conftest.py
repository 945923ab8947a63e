"""Fixtures of the high-availability tests: a real primary with real replicas.

Every server is started by the test on free ports (``--replicaof`` the
primary), one topology per server kind (Redis 7 and Valkey).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis

from ledger.embedded import EmbeddedRedis
from tests.conftest import BINARIES


class Replicated:
    """A primary and its replicas; ``stall(i)`` / ``resume(i)`` SIGSTOP / SIGCONT replica i."""

    def __init__(self, binary: str, replicas: int, datadir: str, replica_args: list[str]) -> None:
        self.binary = binary
        # No 5 s wait for more replicas before the first full sync.
        self.primary = EmbeddedRedis(
            binary=binary,
            datadir=os.path.join(datadir, "p"),
            extra_args=["--repl-diskless-sync-delay", "0"],
        )
        os.makedirs(self.primary.datadir)
        self.replicas: list[EmbeddedRedis] = []
        self._stalled: set[int] = set()
        self.primary.start()
        for i in range(replicas):
            path = os.path.join(datadir, f"r{i}")
            os.makedirs(path)
            args = ["--replicaof", "127.0.0.1", str(self.primary.port), *replica_args]
            self.replicas.append(
                EmbeddedRedis(binary=binary, datadir=path, extra_args=args).start()
            )
        self.synced()

    @property
    def url(self) -> str:
        return self.primary.url

    def synced(self) -> None:
        """Block until every replica holds everything written so far (WAIT with a 20 s cap)."""
        client = redis.Redis(port=self.primary.port, socket_timeout=30)
        try:
            deadline = time.monotonic() + 20
            while client.execute_command("WAIT", len(self.replicas), 200) < len(self.replicas):
                if time.monotonic() > deadline:
                    raise RuntimeError("replicas did not catch up within 20 s")
        finally:
            client.close()

    def replica_client(self, i: int = 0) -> redis.Redis:
        return redis.Redis(port=self.replicas[i].port, socket_timeout=5)

    def stall(self, i: int = 0) -> None:
        proc = self.replicas[i].process
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        self._stalled.add(i)

    def resume(self, i: int = 0) -> None:
        proc = self.replicas[i].process
        assert proc is not None
        os.kill(proc.pid, signal.SIGCONT)
        self._stalled.discard(i)

    def close(self) -> None:
        for i in list(self._stalled):
            self.resume(i)
        for srv in [*self.replicas, self.primary]:
            srv.cleanup()


@pytest.fixture(params=sorted(BINARIES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def replicated(kind: str, tmp_path) -> Iterator[Replicated]:  # type: ignore[no-untyped-def]
    """A primary with one replica."""
    topo = Replicated(BINARIES[kind], 1, str(tmp_path), [])
    yield topo
    topo.close()


@pytest.fixture
def two_replicas(kind: str, tmp_path) -> Iterator[Replicated]:  # type: ignore[no-untyped-def]
    """A primary with two replicas."""
    topo = Replicated(BINARIES[kind], 2, str(tmp_path), [])
    yield topo
    topo.close()
