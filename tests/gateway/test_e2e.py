"""End to end: two gunicorn instances (two workers each) on one real Redis.

Orders alternate between the instances; a kill through one stops the other
on the next request; a raw SET of the global kill key stops both; Redis
stopped mid-run means every order is 503 and none is accepted; Redis
restarted on the same port (append-only file kept) and orders flow again,
with no gateway restarted.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.run import launch, stop, wait_ready
from ledger import Ledger
from ledger.facade.views import aggregates
from ledger.store.embedded import EmbeddedRedis, free_port
from ledger.store.tokens import Role, TokenStore
from tests.gateway.conftest import ORDER as BASE_ORDER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: 1,000.00 USD each.
ORDER = {k: v for k, v in {**BASE_ORDER, "qty": "10", "price": "100"}.items() if k != "order_id"}


def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            is_json = resp.headers.get_content_type() == "application/json"
            return resp.status, json.loads(raw) if is_json else raw.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@dataclass
class Stack:
    srv: EmbeddedRedis
    ledger: Ledger
    tokens: dict[str, str]
    bases: list[str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)

    def order(self, i: int, order_id: str) -> tuple[int, Any]:
        base = self.bases[i % 2]
        status, body = http(
            "POST", f"{base}/v1/orders", self.tokens["oe"], {**ORDER, "order_id": order_id}
        )
        if status == 201:
            self.accepted[base] = self.accepted.get(base, 0) + 1
        return status, body


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    srv = EmbeddedRedis(appendonly=True).start()
    lg = Ledger(redis.Redis.from_url(srv.url), actor="e2e")
    lg.load_policy(str(ROOT / "examples" / "policy.yaml"), by="e2e")
    store = TokenStore(lg.redis)
    tokens = {"oe": store.create(Role.ORDER_ENTRY, "oe"), "ops": store.create(Role.OPS, "ops-e2e")}
    ports = [free_port(), free_port()]
    st = Stack(srv, lg, tokens, [f"http://127.0.0.1:{p}" for p in ports])
    try:
        for port in ports:
            with open(tmp_path / f"gunicorn-{port}.log", "wb") as log:
                st.procs.append(
                    launch(
                        srv.url,
                        bind=f"127.0.0.1:{port}",
                        workers=2,
                        # Generous on a busy 2-core machine; the 50 ms default is tested elsewhere.
                        env={"LEDGER_REDIS_TIMEOUT_MS": "1000"},
                        output=log,
                    )
                )
        for port, base, proc in zip(ports, st.bases, st.procs, strict=True):
            try:
                wait_ready(base, proc)
            except RuntimeError as exc:
                pytest.fail(f"{exc}\n{(tmp_path / f'gunicorn-{port}.log').read_text()}")
        yield st
    finally:
        stop(st.procs)
        lg.redis.close()
        srv.cleanup()


def test_two_instances_share_one_ledger_and_fail_closed(stack: Stack) -> None:
    a, b = stack.bases
    ops = stack.tokens["ops"]

    # Orders alternate between the two instances.
    answers = [stack.order(i, f"n{i}") for i in range(10)]
    assert [s for s, _ in answers] == [201] * 10

    # A kill through A is honoured by B on the very next request, and the other way round.
    status, body = http("POST", f"{a}/v1/kill", ops, {"scope": "desk:EQ-CASH", "reason": "e2e"})
    assert status == 200 and len(body["open_orders"]) == 10
    status, body = stack.order(1, "k1")
    assert status == 403 and body["reason"] == "KILL_SWITCH"
    status, body = http("GET", f"{b}/v1/kill", ops)
    assert [(k["scope"], k["by"], k["reason"]) for k in body["kills"]] == [
        ("desk:EQ-CASH", "ops-e2e", "e2e")
    ]
    assert (
        http("DELETE", f"{b}/v1/kill", ops, {"scope": "desk:EQ-CASH", "reason": "done"})[0] == 200
    )
    assert stack.order(0, "k2")[0] == 201

    # A raw SET of the global kill key stops both instances.
    stack.ledger.redis.set("ledger:kill:global", "by hand")
    killed = [stack.order(i, f"g{i}") for i in range(2)]
    assert [(s, body["reason"], body["scope"]) for s, body in killed] == [
        (403, "KILL_SWITCH", "global")
    ] * 2
    stack.ledger.redis.delete("ledger:kill:global")
    assert stack.order(1, "g9")[0] == 201

    # Redis stopped: every order in the window is 503, none accepted.
    stack.srv.stop()
    down = [stack.order(i, f"d{i}") for i in range(8)]
    assert [s for s, _ in down] == [503] * 8
    assert {body["reason"] for _, body in down} == {"RISK_UNAVAILABLE"}
    assert all(http("GET", f"{base}/readyz")[0] == 503 for base in stack.bases)

    # Restarted on the same port: orders flow again through both, no gateway restarted.
    stack.srv.start()
    after = [stack.order(i, f"r{i}") for i in range(6)]
    assert [s for s, _ in after] == [201] * 6
    assert all(proc.poll() is None for proc in stack.procs)

    lg = stack.ledger
    lg.redis.connection_pool.disconnect()
    assert not any(lg.redis.exists(lg.keys.order("ACME", f"d{i}")) for i in range(8))
    accepted = 10 + 1 + 1 + 6
    assert sum(stack.accepted.values()) == accepted
    assert aggregates(lg.redis, lg.keys, "ACME")["desk:EQ-CASH"].gross == accepted * 100000
    assert lg.check().ok

    # Each instance's /metrics adds up its two workers.
    for base in stack.bases:
        status, text = http("GET", f"{base}/metrics")
        assert status == 200
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("ledger_gateway_decisions_total{")
            and 'op="reserve"' in line
            and 'result="accepted"' in line
        )
        assert counted == stack.accepted[base]
        assert "ledger_gateway_redis_errors_total" in text
