"""The gateway under a real gunicorn, spoken to over raw sockets where a client would misbehave.

What only a real server shows: what lands in its access and error logs, and
how it answers a streamed (chunked) body larger than the limit.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from gateway import DEFAULTS
from gateway.redact import redact
from gateway.run import launch, stop, wait_ready
from ledger import Ledger
from ledger.store.embedded import EmbeddedRedis, free_port
from ledger.store.tokens import Role, TokenStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Gateway:
    host: str
    port: int
    tokens: dict[str, str]
    access_log: Path
    output: Path

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def logs(self) -> str:
        return self.access_log.read_text() + self.output.read_text()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway-server")
    srv = EmbeddedRedis().start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        lg = Ledger(redis.Redis.from_url(srv.url), actor="server-test")
        lg.load_policy(str(ROOT / "examples" / "policy.yaml"), by="server-test")
        store = TokenStore(lg.redis)
        tokens = {
            "oe": store.create(Role.ORDER_ENTRY, "oe"),
            "ops": store.create(Role.OPS, "ops-server"),
        }
        port = free_port()
        access_log, output = tmp / "access.log", tmp / "output.log"
        with output.open("wb") as out:
            proc = launch(
                srv.url,
                bind=f"127.0.0.1:{port}",
                workers=2,
                env={"LEDGER_GATEWAY_ACCESS_LOG": str(access_log)},
                output=out,
            )
        gw = Gateway("127.0.0.1", port, tokens, access_log, output)
        wait_ready(gw.base, proc)
        yield gw
    finally:
        if proc is not None:
            stop([proc])
        srv.cleanup()


class RawClient:
    """One connection; a thread collects whatever the server answers, as soon as it does."""

    def __init__(self, gw: Gateway) -> None:
        self.sock = socket.create_connection((gw.host, gw.port), timeout=10)
        self.answer = bytearray()
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.answer += chunk
        except OSError:
            pass
        self.closed.set()

    def status(self) -> int:
        return int(bytes(self.answer).split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()
        self._reader.join(10)


def test_a_chunked_body_over_the_limit_is_413_without_reading_it_all(gateway: Gateway) -> None:
    limit = int(DEFAULTS["MAX_CONTENT_LENGTH"])
    total = 64 * 1024 * 1024
    client = RawClient(gateway)
    client.sock.sendall(
        (
            "POST /v1/orders HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {gateway.tokens['oe']}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    # The start of a valid order, then one long string: no parse error before the limit.
    start = b'{"order_id": "big", "trader": "' + b"x" * 16000
    chunks = [start] + [b"x" * 16384] * (total // 16384)
    sent = 0
    try:
        for chunk in chunks:
            if client.answer:
                break
            client.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        else:
            client.sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server answered and closed the connection: what is asserted below
    client.closed.wait(10)
    client.close()
    assert client.answer, "no answer"
    assert client.status() == 413, bytes(client.answer[:300])
    assert b"REQUEST_TOO_LARGE" in client.answer
    # Answered long before the whole body was sent; what was sent is bounded by the
    # limit plus what the socket buffers took in meanwhile.
    assert limit < sent < total // 2


def test_a_chunked_body_within_the_limit_is_read_whole(gateway: Gateway) -> None:
    order = (
        b'{"order_id": "chunked-1", "trader": "T-ALICE", "strategy": "MM-1", '
        b'"account": "ACC-1", "symbol": "AAPL", "side": "buy", "qty": "1", "price": "1"}'
    )
    client = RawClient(gateway)
    client.sock.sendall(
        (
            "POST /v1/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Authorization: Bearer {gateway.tokens['oe']}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    for part in (order[:40], order[40:]):
        client.sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
    client.sock.sendall(b"0\r\n\r\n")
    client.closed.wait(10)
    client.close()
    assert client.status() == 201, bytes(client.answer[:300])


def test_the_dashboard_token_never_reaches_a_log(gateway: Gateway) -> None:
    token = gateway.tokens["ops"]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{gateway.base}/dashboard?token={token}", timeout=10) as resp:
        # The redirect moved the token into the cookie and out of the address.
        assert resp.status == 200 and token not in resp.url
    with opener.open(f"{gateway.base}/dashboard/live?token={token}&x=1", timeout=10) as resp:
        assert resp.status == 200
    req = urllib.request.Request(
        f"{gateway.base}/dashboard?token={token}",
        headers={"Referer": f"{gateway.base}/dashboard?token={token}"},
    )
    with opener.open(req, timeout=10) as resp:
        assert resp.status == 200
    # A malformed request line that carries the token reaches the error log if anything does.
    client = RawClient(gateway)
    client.sock.sendall(f"GET /dashboard?token={token} HTTP/1.1 extra\r\n\r\n".encode())
    client.closed.wait(10)
    client.close()
    stop_line = "GET /readyz?end-of-test"
    with urllib.request.urlopen(f"{gateway.base}/readyz?end-of-test", timeout=10):
        pass
    # gunicorn writes an access line after the answer: wait for the last one.
    deadline = time.monotonic() + 10
    while stop_line not in gateway.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    logs = gateway.logs()
    assert stop_line in logs, "the access log did not record the requests"
    assert "/dashboard" in logs
    assert token not in logs


@pytest.mark.parametrize(
    ("line", "clean"),
    [
        ("GET /dashboard?token=llt_a-b_c HTTP/1.1", "GET /dashboard?token=[redacted] HTTP/1.1"),
        ("GET /x?a=1&TOKEN=s3cret&b=2", "GET /x?a=1&TOKEN=[redacted]&b=2"),
        ("/dashboard%3Ftoken%3Dllt_x", "/dashboard%3Ftoken%3D[redacted]"),
        (
            '"Bearer llt_abc" "ledger_token=llt_abc"',
            '"Bearer [redacted]" "ledger_token=[redacted]"',
        ),
    ],
)
def test_redact_cuts_every_form_of_a_token(line: str, clean: str) -> None:
    assert redact(line) == clean
