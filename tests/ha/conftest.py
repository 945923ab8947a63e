"""Fixtures of the high-availability tests: a real primary with real replicas.

Every server is started by the test on free ports (``--replicaof`` the
primary), one topology per server kind (Redis 7 and Valkey).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from ledger.store.embedded import EmbeddedRedis, free_port
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
        self.password: str | None = None
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
        client = redis.Redis(port=self.primary.port, socket_timeout=30, password=self.password)
        try:
            deadline = time.monotonic() + 20
            # A write of this connection's own: WAIT counts up to its last one.
            client.publish("synced", "")
            while client.execute_command("WAIT", len(self.replicas), 200) < len(self.replicas):
                if time.monotonic() > deadline:
                    raise RuntimeError("replicas did not catch up within 20 s")
        finally:
            client.close()

    def replica_client(self, i: int = 0) -> redis.Redis:
        return redis.Redis(port=self.replicas[i].port, socket_timeout=5, password=self.password)

    def require_password(self, password: str) -> None:
        """AUTH on every node from now on (replicas first learn how to reach the primary)."""
        for srv in self.replicas:
            with redis.Redis(port=srv.port) as c:
                c.config_set("masterauth", password)
        for srv in [*self.replicas, self.primary]:
            with redis.Redis(port=srv.port) as c:
                c.config_set("requirepass", password)
        self.password = password
        self.synced()

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


class Sentinels:
    """Three ``--sentinel`` processes of the server's own binary watching ``topo``'s primary.

    Small down-after and failover timeouts keep a failover within seconds.
    """

    SERVICE = "ledger"

    def __init__(
        self, topo: Replicated, datadir: str, count: int = 3, password: str | None = None
    ) -> None:
        self.topo = topo
        self.password = password
        auth = ""
        if topo.password:
            auth += f"sentinel auth-pass {self.SERVICE} {topo.password}\n"
        if password:
            auth += f"requirepass {password}\nsentinel sentinel-pass {password}\n"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        for i in range(count):
            port = free_port()
            path = os.path.join(datadir, f"s{i}")
            os.makedirs(path)
            conf = os.path.join(path, "sentinel.conf")
            with open(conf, "w", encoding="utf-8") as f:
                f.write(
                    f"port {port}\nbind 127.0.0.1\ndir {path}\n"
                    f"logfile {os.path.join(path, 'sentinel.log')}\n"
                    f"sentinel monitor {self.SERVICE} 127.0.0.1 {topo.primary.port} 2\n"
                    f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                    f"sentinel failover-timeout {self.SERVICE} 4000\n"
                    f"sentinel parallel-syncs {self.SERVICE} 1\n{auth}"
                )
            self.procs.append(
                subprocess.Popen(
                    [topo.binary, conf, "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.ports.append(port)
        self.wait(lambda: all(self._sees_replicas(p) for p in self.ports), "sentinels ready")

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/0"

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(
            port=port, socket_timeout=2, decode_responses=True, password=self.password
        )

    def _sees_replicas(self, port: int) -> bool:
        try:
            with self._client(port) as c:
                replicas = c.execute_command("SENTINEL", "REPLICAS", self.SERVICE)
                others = c.execute_command("SENTINEL", "SENTINELS", self.SERVICE)
        except redis.RedisError:
            return False
        return len(replicas) == len(self.topo.replicas) and len(others) == len(self.ports) - 1

    def primary_port(self) -> int | None:
        """The primary's port as the sentinels' majority sees it; None while they disagree."""
        seen = []
        for port in self.ports:
            try:
                with self._client(port) as c:
                    addr = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
                seen.append(int(addr[1]))
            except redis.RedisError:
                continue
        best = max(set(seen), key=seen.count) if seen else None
        return best if best is not None and seen.count(best) >= 2 else None

    @staticmethod
    def wait(done: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not within {timeout_s} s")
            time.sleep(0.1)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def sentinels(replicated: Replicated, tmp_path) -> Iterator[Sentinels]:  # type: ignore[no-untyped-def]
    """Three sentinels over ``replicated`` (a primary and one replica)."""
    group = Sentinels(replicated, str(tmp_path / "sentinels"))
    yield group
    group.close()
