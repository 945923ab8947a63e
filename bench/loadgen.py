"""HTTP load for the gateway scenario, run in the worker processes (never in the gateway's).

``fixed_rate`` is open-loop: request ``k`` is due at ``start + k / rate``
and its latency is measured from that instant, so a slow answer that delays
the next sends is charged to the requests it delayed (no coordinated
omission). It sends over several kept-alive connections, each in its own
thread taking every n-th due time, so that one slow answer does not stop
the schedule while the others are free (as wrk2 does with its
connections). ``closed_loop`` sends back to back, for saturation.
Connections are kept alive where the server allows it.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = ["fixed_rate", "closed_loop"]


class _Client:
    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> int:
        data = json.dumps(body).encode()
        for attempt in range(2):
            try:
                self.conn.request("POST", path, data, self.headers)
                resp = self.conn.getresponse()
                resp.read()
                if resp.will_close:
                    self.conn.close()
                return resp.status
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _order(tag: str, i: int, path: tuple[str, str, str]) -> dict[str, Any]:
    account, strategy, trader = path
    return {
        "order_id": f"{tag}-{i}",
        "trader": trader,
        "strategy": strategy,
        "account": account,
        "symbol": "XYZ",
        "side": "buy" if i % 2 else "sell",
        "qty": "10",
        "price": "100.25",
    }


def _wait(start_at: float) -> None:
    delay = start_at - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def fixed_rate(
    base: str,
    token: str,
    paths: list[tuple[str, str, str]],
    tag: str,
    rate: float,
    seconds: float,
    start_at: float,
    connections: int = 8,
) -> dict[str, Any]:
    """Send ``rate`` orders per second for ``seconds`` over ``connections`` kept-alive
    connections; latencies (ns, from each request's due time) and status counts."""
    clients = [_Client(base, token) for _ in range(connections)]
    for c, client in enumerate(clients):
        client.post("/v1/orders", _order(f"{tag}-warm{c}", 0, paths[0]))
    _wait(start_at)
    start = time.monotonic()
    total = int(rate * seconds)
    latencies: list[int] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    def send(c: int) -> None:
        client = clients[c]
        for i in range(c, total, connections):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            status = client.post("/v1/orders", _order(tag, i, paths[i % len(paths)]))
            took = int((time.monotonic() - due) * 1e9)
            with lock:
                latencies.append(took)
                statuses[str(status)] = statuses.get(str(status), 0) + 1

    threads = [threading.Thread(target=send, args=(c,)) for c in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies_ns": latencies, "statuses": statuses, "t0": start, "t1": time.monotonic()}


def closed_loop(
    base: str,
    token: str,
    paths: list[tuple[str, str, str]],
    tag: str,
    seconds: float,
    start_at: float,
) -> dict[str, Any]:
    """Send orders back to back for ``seconds``; count and status counts."""
    client = _Client(base, token)
    client.post("/v1/orders", _order(f"{tag}-warm", 0, paths[0]))
    _wait(start_at)
    t0 = time.monotonic()
    deadline = t0 + seconds
    statuses: dict[str, int] = {}
    i = 0
    while time.monotonic() < deadline:
        status = client.post("/v1/orders", _order(tag, i, paths[i % len(paths)]))
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        i += 1
    return {"count": i, "statuses": statuses, "t0": t0, "t1": time.monotonic()}
