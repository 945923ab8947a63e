"""The shipped reverse proxy (gateway/nginx.conf) in front of a real gunicorn.

Many slow clients hold half-sent requests open through the proxy while other
clients send orders: every order is answered, and the slow clients are still
connected when it is (nothing gave up on them). The gunicorn behind it runs
two workers, whose threads the same slow clients would hold if they reached it.
Needs nginx (`.ci/run` installs it); skipped where there is none.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.run import launch, stop, wait_ready
from ledger import Ledger
from ledger.store.embedded import EmbeddedRedis, free_port
from ledger.store.tokens import Role, TokenStore
from tests.gateway.conftest import ORDER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "gateway" / "nginx.conf"
#: Far more slow clients than gunicorn workers behind the proxy.
SLOW_CLIENTS = 24
WORKERS = 2


def proxy_conf(gateway_port: int, port: int, access_log: Path) -> str:
    """The shipped configuration, pointed at the test's gunicorn and ports.

    The stall timeouts are raised so that the slow clients are certainly still
    connected while the test sends its orders, whatever the machine's load.
    """
    text = SHIPPED.read_text()
    text, n = re.subn(r"(?m)^\s*server gateway-[ab]:8000;\n", "", text)
    assert n == 2, "the shipped upstream names gateway-a and gateway-b"
    text = text.replace("keepalive 32;", f"server 127.0.0.1:{gateway_port};\n    keepalive 32;")
    for old, new in (
        ("listen 8100;", f"listen 127.0.0.1:{port};"),
        ("access_log /dev/stdout ledger_edge;", f"access_log {access_log} ledger_edge;"),
        ("client_header_timeout 10s;", "client_header_timeout 120s;"),
        ("client_body_timeout 10s;", "client_body_timeout 120s;"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


@dataclass
class Edge:
    base: str
    port: int
    token: str
    access_log: Path


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if nginx is None:
        pytest.skip("nginx is not installed")
    tmp = tmp_path_factory.mktemp("edge")
    srv = EmbeddedRedis().start()
    procs: list[subprocess.Popen[bytes]] = []
    proxy: subprocess.Popen[bytes] | None = None
    try:
        lg = Ledger(redis.Redis.from_url(srv.url), actor="edge-test")
        lg.load_policy(str(ROOT / "examples" / "policy.yaml"), by="edge-test")
        token = TokenStore(lg.redis).create(Role.ORDER_ENTRY, "oe-edge")
        gateway_port, port = free_port(), free_port()
        with (tmp / "gunicorn.log").open("wb") as out:
            procs.append(
                launch(srv.url, bind=f"127.0.0.1:{gateway_port}", workers=WORKERS, output=out)
            )
        wait_ready(f"http://127.0.0.1:{gateway_port}", procs[0])
        access_log = tmp / "access.log"
        (tmp / "ledger.conf").write_text(proxy_conf(gateway_port, port, access_log))
        temp = {name: tmp / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir()
        (tmp / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
            f"error_log {tmp / 'error.log'} warn;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            + "".join(f"    {name}_temp_path {path};\n" for name, path in temp.items()).replace(
                "body_temp_path", "client_body_temp_path"
            )
            + f"    include {tmp / 'ledger.conf'};\n}}\n"
        )
        proxy = subprocess.Popen(
            [nginx, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proxy)
        yield Edge(base, port, token, access_log)
    finally:
        if proxy is not None and proxy.poll() is None:
            proxy.terminate()
            proxy.wait(timeout=20)
        stop(procs)
        srv.cleanup()


def post_order(edge: Edge, order_id: str) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"{edge.base}/v1/orders",
        data=json.dumps({**ORDER, "order_id": order_id, "qty": "1"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {edge.token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")[:200]


def still_open(sock: socket.socket) -> bool:
    """True while the server has neither answered nor closed the connection."""
    sock.setblocking(False)
    try:
        return not sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_slow_clients_do_not_stop_the_gateway_answering_others(edge: Edge) -> None:
    body = json.dumps({**ORDER, "order_id": "slow"}).encode()
    slow: list[socket.socket] = []
    try:
        for i in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
            head = (
                f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {edge.token}\r\nContent-Length: {len(body)}\r\n"
            ).encode()
            # Half of them stop inside the headers, half inside the body.
            sock.sendall(head if i % 2 else head + b"\r\n" + body[: len(body) // 2])
            slow.append(sock)
        # Give every slow connection time to be accepted and read as far as it goes.
        time.sleep(0.5)
        answers = [post_order(edge, f"fast-{i}") for i in range(2 * WORKERS + 2)]
        assert [status for status, _ in answers] == [201] * len(answers), answers
        assert all(a["decision"] == "accepted" for _, a in answers)
        assert all(still_open(s) for s in slow), "a slow client was dropped: nothing was proven"
    finally:
        for sock in slow:
            sock.close()


def test_the_proxy_log_has_no_query_string(edge: Edge) -> None:
    try:
        urllib.request.urlopen(f"{edge.base}/dashboard?token=secret-in-url", timeout=10).close()
    except urllib.error.HTTPError as exc:
        assert exc.code == 401  # not a token: the point is only what gets logged
    deadline = time.monotonic() + 10
    while "/dashboard" not in edge.access_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = edge.access_log.read_text()
    assert "GET /dashboard " in log
    assert "secret-in-url" not in log


def test_compose_puts_the_proxy_in_front_of_the_gateways() -> None:
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    edge = services["edge"]
    assert edge["image"].startswith("nginx")
    assert "./gateway/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in edge["volumes"]
    assert edge["ports"] == ["8100:8100"]
    upstream = re.findall(r"(?m)^\s*server (\S+):8000;", SHIPPED.read_text())
    gateways = [name for name in services if name.startswith("gateway-")]
    # The proxy fronts the default stack; the profile "ha" gateways are reached directly.
    default = [name for name in gateways if not services[name].get("profiles")]
    assert sorted(upstream) == sorted(default) and len(default) >= 2
    for name in gateways:
        # Reachable from this host for checks, never from outside past the proxy.
        assert all(str(p).startswith("127.0.0.1:") for p in services[name]["ports"]), name
