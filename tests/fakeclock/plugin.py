"""A server whose wall clock the test sets, to the millisecond.

Scripts take the time from the server (``TIME``), so time-dependent rules
(an override that lapses at ``u``, a window that rolls) can only be tested
exactly by moving the server's own clock. ``fakeclock.c`` is compiled once
per session and preloaded into a real ``redis-server`` / ``valkey-server``;
it rewrites CLOCK_REALTIME from a control file the :class:`Clock` writes.

Fixtures:

* ``clock_server``: a preloaded server per server kind (the kinds of the
  ``server`` fixture in tests/conftest.py), one per session;
* ``clock``: a :class:`Clock` on a flushed ``clock_server``, wall time back
  to real; ``clock.ledger`` is a :class:`ledger.Ledger` on it, no policy loaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ledger import Ledger

__all__ = ["Clock", "ClockServer"]

SOURCE = Path(__file__).with_name("fakeclock.c")
#: Valkey extrapolates wall time from its TSC for up to 1 ms after each real
#: read, so a read taken before a change may be reused that long. Waiting
#: past it makes the very next command see the new time.
_SETTLE_S = 0.002


def build_shim(out_dir: Path) -> Path:
    """Compile ``fakeclock.c`` into ``out_dir``; fails the test (never skips) without a compiler."""
    cc = os.environ.get("CC") or shutil.which("cc")
    if not cc:
        pytest.fail(
            "the fake clock needs a C compiler to build tests/fakeclock/fakeclock.c, and "
            "`cc` is not on PATH: install one (apt-get install gcc) or set CC",
            pytrace=False,
        )
    out = out_dir / "libfakeclock.so"
    build = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(out), str(SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        pytest.fail(f"compiling {SOURCE} with {cc} failed:\n{build.stderr}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def fakeclock_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shim, compiled once per session."""
    return build_shim(tmp_path_factory.mktemp("fakeclock"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ClockServer:
    """A running preloaded server and the control file that sets its wall clock."""

    kind: str
    port: int
    control: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _start(kind: str, binary: str, lib: Path, workdir: Path) -> ClockServer:
    control = workdir / "clock"
    control.write_text("offset 0\n")
    port = _free_port()
    env = {**os.environ, "LD_PRELOAD": str(lib), "FAKECLOCK_FILE": str(control)}
    log = workdir / "server.log"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(workdir), "--logfile", str(log), "--daemonize", "no"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    # No retries: the loop polls, and a refused connection must come back at once.
    client = redis.Redis(port=port, socket_timeout=1.0, retry=Retry(NoBackoff(), 0))
    deadline = time.monotonic() + 15
    try:
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    text = log.read_text() if log.exists() else "(no log)"
                    pytest.fail(f"{kind} server with the fake clock did not start:\n{text}")
                time.sleep(0.02)
    finally:
        client.close()
    return ClockServer(kind, port, control, process)


@pytest.fixture(scope="session")
def clock_server(
    server: Any, fakeclock_lib: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockServer]:
    """A preloaded server of the kind ``server`` is parametrized with (same binary)."""
    binary: str = server.executable
    kind = "valkey" if "valkey" in Path(binary).name else "redis"
    started = _start(kind, binary, fakeclock_lib, tmp_path_factory.mktemp(f"clock-{kind}"))
    yield started
    started.process.terminate()
    try:
        started.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        started.process.kill()
        started.process.wait()


class Clock:
    """The wall clock of one ``clock_server``; every time is ms since the epoch."""

    def __init__(self, server: ClockServer, client: redis.Redis) -> None:
        self.server = server
        self.redis = client
        self.ledger = Ledger(client, actor="test")
        self._frozen: int | None = None
        self._offset = 0

    def _write(self, line: str) -> None:
        # Whole-file replace: the shim reads either the old line or the new one.
        tmp = self.server.control.with_suffix(".tmp")
        tmp.write_text(line + "\n")
        os.replace(tmp, self.server.control)
        time.sleep(_SETTLE_S)

    def now_ms(self) -> int:
        """The server's TIME, in ms (what a script's now_ms() reads)."""
        raw: Any = self.redis.time()
        seconds, micros = raw
        return int(seconds) * 1000 + int(micros) // 1000

    def set_ms(self, t: int) -> None:
        """Freeze the server's wall time at exactly ``t`` until the next change."""
        self._frozen = t
        self._write(f"freeze {t}")

    def advance_ms(self, delta: int) -> None:
        """Move the clock by ``delta`` ms (frozen stays frozen, running stays running)."""
        if self._frozen is not None:
            self.set_ms(self._frozen + delta)
        else:
            self._offset += delta
            self._write(f"offset {self._offset}")

    def run_from_ms(self, t: int) -> None:
        """Let the clock run on from about ``t`` (a running clock cannot be exact)."""
        self._frozen = None
        self._offset = t - time.time_ns() // 1_000_000
        self._write(f"offset {self._offset}")

    def real(self) -> None:
        self._frozen, self._offset = None, 0
        self._write("offset 0")


@pytest.fixture
def clock(clock_server: ClockServer) -> Iterator[Clock]:
    client = redis.Redis(port=clock_server.port, socket_timeout=5.0)
    c = Clock(clock_server, client)
    c.real()
    client.flushall()
    client.script_flush()
    yield c
    c.real()
    client.close()
