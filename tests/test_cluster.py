"""The same scripts on a real three-shard Redis Cluster, with firms on different shards."""

from __future__ import annotations

import socket
import time

import pytest
import redis
from redis.crc import key_slot

from ledger import Ledger, Reason, parse_policy
from ledger.store.embedded import EmbeddedRedis, free_port
from tests.conftest import BINARIES
from tests.helpers import order

SHARDS = ((0, 5460), (5461, 10922), (10923, 16383))


def _policy_doc(firms: list[str]) -> dict:
    doc: dict = {"version": 1, "currency": "USD", "firms": [], "strategies": [], "traders": []}
    for f in firms:
        doc["firms"].append(
            {
                "id": f,
                "limits": {"max_gross_notional": "1000"},
                "desks": [{"id": f"D-{f}", "accounts": [{"id": f"A-{f}"}]}],
            }
        )
        doc["strategies"].append({"id": f"S-{f}", "accounts": [f"A-{f}"]})
        doc["traders"].append({"id": f"T-{f}", "accounts": [f"A-{f}"], "strategies": [f"S-{f}"]})
    return doc


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port < 55535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


@pytest.fixture(scope="module", params=sorted(BINARIES))
def cluster(request, tmp_path_factory):
    nodes = []
    try:
        for i in range(3):
            node = EmbeddedRedis(
                binary=BINARIES[request.param],
                port=_cluster_port(),
                datadir=str(tmp_path_factory.mktemp(f"cluster{i}")),
                extra_args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
            )
            nodes.append(node)
            node.start()
        clients = [redis.Redis(port=n.port) for n in nodes]
        for c, (lo, hi) in zip(clients, SHARDS, strict=True):
            c.execute_command("CLUSTER ADDSLOTSRANGE", lo, hi)
        for c in clients[1:]:
            c.execute_command("CLUSTER MEET", "127.0.0.1", nodes[0].port)
        deadline = time.monotonic() + 30
        while any(c.cluster("info")["cluster_state"] != "ok" for c in clients):
            assert time.monotonic() < deadline, "cluster did not form"
            time.sleep(0.1)
        yield nodes
    finally:
        for n in nodes:
            n.cleanup()


def _firms_on_distinct_shards() -> list[str]:
    found: dict[int, str] = {}
    for i in range(100):
        firm = f"FIRM{i}"
        shard = next(
            j for j, (lo, hi) in enumerate(SHARDS) if lo <= key_slot(f"{{{firm}}}".encode()) <= hi
        )
        found.setdefault(shard, firm)
    return [found[j] for j in sorted(found)]


def test_firms_spread_over_shards_trade_kill_and_release(cluster):
    firms = _firms_on_distinct_shards()
    assert len(firms) == 3
    lg = Ledger.from_url(f"redis://127.0.0.1:{cluster[0].port}/0", cluster=True, timeout_s=2.0)
    lg.load_policy(parse_policy(_policy_doc(firms)), by="test")
    for f in firms:
        o = order(
            f"o-{f}", qty="5", price="100", trader=f"T-{f}", strategy=f"S-{f}", account=f"A-{f}"
        )
        assert lg.reserve(o).accepted
        d = lg.reserve(
            order(
                f"big-{f}",
                qty="6",
                price="100",
                trader=f"T-{f}",
                strategy=f"S-{f}",
                account=f"A-{f}",
            )
        )
        assert (d.reason, d.scope) == (Reason.GROSS_LIMIT, f"firm:{f}")
    assert lg.fill(f"o-{firms[0]}", "f1", qty="2", price="100").ok
    killed = lg.kill("global", by="ops", reason="cluster drill")
    assert sorted(killed.open_orders) == sorted(f"o-{f}" for f in firms)
    for f in firms:
        assert (
            lg.reserve(order(f"n-{f}", trader=f"T-{f}", strategy=f"S-{f}", account=f"A-{f}")).reason
            == Reason.KILL_SWITCH
        )
    lg.unkill("global", by="ops", reason="drill over")
    for f in firms:
        assert lg.release(f"o-{f}", reason="cancelled").ok
    rows = {(r.scope, r.limit_name): r.used for r in lg.utilization()}
    assert rows[(f"firm:{firms[0]}", "max_gross_notional")] == 20_000  # the fill stays
    assert rows[(f"firm:{firms[1]}", "max_gross_notional")] == 0
    assert lg.check().ok


def test_reference_prices_halt_and_resume_on_every_shard(cluster):
    firms = _firms_on_distinct_shards()
    doc = _policy_doc(firms)
    doc["reference_prices"] = {"max_age_ms": 5000, "max_jump_pct": "10"}
    lg = Ledger.from_url(f"redis://127.0.0.1:{cluster[0].port}/0", cluster=True, timeout_s=2.0)
    lg.load_policy(parse_policy(doc), by="test")
    # The scripts are new to every shard: each firm's first call loads them there.
    assert {r.firm for r in lg.prices.set({"AAPL": "100"}, by="feed")} == set(firms)
    rows = lg.prices.set({"AAPL": "120"}, by="feed")
    assert [(r.firm, r.status.value, r.jump_bps) for r in rows] == [
        (f, "halted", 2000) for f in sorted(firms)
    ]
    assert all(r.halt is not None and r.price == "120" for r in lg.prices.get(["AAPL"]))
    assert lg.prices.resume("AAPL", by="ops", reason="drill").firms == tuple(sorted(firms))
    assert all(r.halt is None for r in lg.prices.get())
