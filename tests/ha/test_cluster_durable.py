"""Durable acknowledgement on Redis Cluster: WAIT on the shard that owns each firm's slot.

A real three-shard cluster, each primary with one replica (CLUSTER REPLICATE),
firms spread over the shards. A stalled replica (SIGSTOP) fails closed the
calls of its shard's firms only; the retry replays once the replica is back.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from ledger import Ledger, LedgerUnavailable, parse_policy
from ledger.store.durable import Durability, DurableWrites, NotDurable
from ledger.store.embedded import EmbeddedRedis
from ledger.store.keys import Keys
from tests.conftest import BINARIES
from tests.helpers import order
from tests.test_cluster import SHARDS, _cluster_port, _firms_on_distinct_shards, _policy_doc

LIVE_MS = 10_000
STALLED_MS = 200


class Shards:
    def __init__(self, primaries: list[EmbeddedRedis], replicas: list[EmbeddedRedis]) -> None:
        self.primaries = primaries
        self.replicas = replicas
        self._stalled: set[int] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.primaries[0].port}/0"

    def stall(self, i: int) -> None:
        proc = self.replicas[i].process
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        self._stalled.add(i)

    def resume(self, i: int) -> None:
        proc = self.replicas[i].process
        assert proc is not None
        os.kill(proc.pid, signal.SIGCONT)
        self._stalled.discard(i)

    def on_replica(self, i: int, key: str) -> bool:
        """Whether shard i's replica holds ``key`` now (no waiting: WAIT already did)."""
        with redis.Redis(port=self.replicas[i].port, single_connection_client=True) as c:
            c.execute_command("READONLY")
            return bool(c.exists(key))

    def flush(self) -> None:
        for i in list(self._stalled):
            self.resume(i)
        for p in self.primaries:
            with redis.Redis(port=p.port) as c:
                c.flushall()
                c.script_flush()
                c.execute_command("WAIT", 1, 10_000)


def _node_id(port: int) -> str:
    with redis.Redis(port=port) as c:
        return str(c.execute_command("CLUSTER MYID").decode())


@pytest.fixture(scope="module", params=sorted(BINARIES))
def shards(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Shards]:
    nodes: list[EmbeddedRedis] = []
    try:
        for i in range(6):
            node = EmbeddedRedis(
                binary=BINARIES[request.param],
                port=_cluster_port(),
                datadir=str(tmp_path_factory.mktemp(f"shard{i}")),
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--repl-diskless-sync-delay",
                    "0",
                ],
            )
            nodes.append(node)
            node.start()
        primaries, replicas = nodes[:3], nodes[3:]
        clients = [redis.Redis(port=n.port) for n in nodes]
        for c, (lo, hi) in zip(clients[:3], SHARDS, strict=True):
            c.execute_command("CLUSTER ADDSLOTSRANGE", lo, hi)
        for c in clients[1:]:
            c.execute_command("CLUSTER MEET", "127.0.0.1", nodes[0].port)
        deadline = time.monotonic() + 60
        for primary, replica in zip(primaries, replicas, strict=True):
            want = _node_id(primary.port)
            while True:
                # The replica must have heard of its primary (gossip) before it can follow it.
                try:
                    redis.Redis(port=replica.port).execute_command("CLUSTER REPLICATE", want)
                    break
                except redis.ResponseError:
                    assert time.monotonic() < deadline, "replica did not learn its primary"
                    time.sleep(0.1)

        def ready() -> bool:
            if any(c.cluster("info")["cluster_state"] != "ok" for c in clients):
                return False
            return all(
                redis.Redis(port=r.port).info("replication").get("master_link_status") == "up"
                for r in replicas
            )

        while not ready():
            assert time.monotonic() < deadline, "cluster with replicas did not form"
            time.sleep(0.1)
        group = Shards(primaries, replicas)
        yield group
        group.flush()
    finally:
        for n in nodes:
            n.cleanup()


@pytest.fixture
def cluster(shards: Shards) -> Shards:
    shards.flush()
    return shards


def _ledger(topo: Shards, timeout_ms: int = LIVE_MS) -> Ledger:
    return Ledger.from_url(
        topo.url,
        cluster=True,
        timeout_s=5.0,
        actor="test",
        durable_replicas=1,
        durable_timeout_ms=timeout_ms,
    )


def _order(firm: str, oid: str, qty: str = "1") -> Any:
    return order(
        oid, qty=qty, price="1", trader=f"T-{firm}", strategy=f"S-{firm}", account=f"A-{firm}"
    )


def test_each_shard_acknowledges_with_its_own_replica(cluster: Shards) -> None:
    firms = _firms_on_distinct_shards()
    lg = _ledger(cluster)
    # The policy load writes every shard; its one wait covers each primary's replica.
    lg.load_policy(parse_policy(_policy_doc(firms)), by="test")
    for i, f in enumerate(firms):
        assert cluster.on_replica(i, lg.keys.policy(f))
        assert lg.reserve(_order(f, f"o-{f}")).accepted
        assert cluster.on_replica(i, lg.keys.order(f, f"o-{f}"))
        assert lg.fill(f"o-{f}", "x1", "1", "1", firm=f).ok
        assert lg.reserve_many([_order(f, f"m-{f}")])[0].accepted
        assert cluster.on_replica(i, lg.keys.order(f, f"m-{f}"))
    assert not lg.kill("global", by="ops", reason="drill").already
    for i, f in enumerate(firms):
        assert cluster.on_replica(i, lg.keys.global_kill(f))
    # Readiness asks every primary: each has the one live replica the setting needs, not two.
    assert lg.durable.not_ready() is None
    two = Ledger.from_url(cluster.url, cluster=True, durable_replicas=2)
    assert "1 live replica(s), durability needs 2" in str(two.durable.not_ready())


def test_a_stalled_shard_replica_fails_closed_its_firms_only(cluster: Shards) -> None:
    firms = _firms_on_distinct_shards()
    lg = _ledger(cluster)
    lg.load_policy(parse_policy(_policy_doc(firms)), by="test")
    quick = _ledger(cluster, STALLED_MS)
    cluster.stall(1)
    with pytest.raises(NotDurable, match="0 of 1 replica"):
        quick.reserve(_order(firms[1], "s1"))
    # Stored on its shard's primary all the same: it counts at once.
    with redis.Redis(port=cluster.primaries[1].port) as p:
        assert p.exists(lg.keys.order(firms[1], "s1"))
    # The other shards' replicas confirm as before.
    assert quick.reserve(_order(firms[0], "s0")).accepted
    assert quick.reserve(_order(firms[2], "s2")).accepted
    # A step over every firm waits on every primary: the stalled shard fails it closed.
    with pytest.raises(LedgerUnavailable):
        quick.kill("global", by="ops", reason="drill")
    cluster.resume(1)
    retried = lg.reserve(_order(firms[1], "s1"))
    assert retried.accepted and retried.replayed
    assert cluster.on_replica(1, lg.keys.order(firms[1], "s1"))


def test_a_replay_on_a_fresh_connection_still_waits_on_its_shard(cluster: Shards) -> None:
    # WAIT counts the connection's own last write; a replay writes nothing. A
    # cluster PUBLISH does not reach the shard's replication stream, so the
    # write before WAIT is to a key in the firm's slot.
    firms = _firms_on_distinct_shards()
    lg = _ledger(cluster)
    lg.load_policy(parse_policy(_policy_doc(firms)), by="test")
    cluster.stall(2)
    with pytest.raises(NotDurable):
        _ledger(cluster, STALLED_MS).reserve(_order(firms[2], "r1"))
    with pytest.raises(NotDurable):
        _ledger(cluster, STALLED_MS).reserve(_order(firms[2], "r1"))
    cluster.resume(2)
    assert lg.reserve(_order(firms[2], "r1")).replayed


def test_the_marker_is_in_the_slot_of_the_call_it_follows() -> None:
    keys = Keys("ledger", cluster=True)
    writes = DurableWrites(None, Durability(1), "ledger", cluster=True)
    for firm in ("F1", "ACME", "x.y_z-1"):
        for key in (keys.order(firm, "o-1"), keys.policy(firm), keys.global_kill(firm)):
            assert writes.marker(key) == keys.durable_marker(firm)
            assert key_slot(writes.marker(key).encode()) == key_slot(key.encode())
    # A key without a hash tag (the policy document): its own slot.
    plain = keys.policy_doc()
    assert key_slot(writes.marker(plain).encode()) == key_slot(plain.encode())
