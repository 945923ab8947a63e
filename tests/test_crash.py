"""A crash of the server under load: nothing acknowledged is lost, nothing is half applied."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pytest

from ledger import Ledger, LedgerUnavailable, Order
from ledger.store.embedded import EmbeddedRedis
from tests.conftest import BINARIES
from tests.helpers import load

WORKERS = 4


def _send(url: str, tag: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Reserve until the server goes away; report every order id it acknowledged."""
    lg = Ledger.from_url(url, timeout_s=2.0)
    acknowledged = []
    for i in range(100_000):
        o = Order(f"{tag}-{i}", "T1", "S1", "A2", "XYZ", "buy" if i % 2 else "sell", "1", "1")
        try:
            d = lg.reserve(o)
        except LedgerUnavailable:
            break
        if d.accepted:
            acknowledged.append(o.order_id)
    out.put((tag, acknowledged))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BINARIES))
def test_kill_9_under_load_keeps_every_acknowledged_reservation(kind, tmp_path):
    srv = EmbeddedRedis(binary=BINARIES[kind], datadir=str(tmp_path), appendonly=True).start()
    try:
        lg = Ledger.from_url(srv.url, timeout_s=2.0)
        doc = {
            "version": 1,
            "currency": "USD",
            "firms": [{"id": "F1", "desks": [{"id": "D1", "accounts": [{"id": "A2"}]}]}],
            "strategies": [{"id": "S1", "accounts": ["A2"]}],
            "traders": [{"id": "T1", "accounts": ["A2"], "strategies": ["S1"]}],
        }
        load(lg, doc)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_send, args=(srv.url, f"w{i}", out)) for i in range(WORKERS)]
        for p in procs:
            p.start()
        # Let the workers get going, then crash the server mid-stream.
        deadline = time.monotonic() + 60
        while lg.redis.hlen("ledger:{F1}:agg") == 0 or _open(lg) < 200:
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.05)
        os.kill(srv.process.pid, signal.SIGKILL)
        srv.process.wait()
        srv.process = None
        acknowledged = dict(out.get(timeout=60) for _ in procs)
        for p in procs:
            p.join(timeout=30)
        srv.start()

        acked = [oid for ids in acknowledged.values() for oid in ids]
        assert len(acked) >= 200
        # Every acknowledged reservation is there, open, after the restart.
        pipe = lg.redis.pipeline(transaction=False)
        for oid in acked:
            pipe.hget(f"ledger:{{F1}}:order:{oid}", "st")
        assert set(pipe.execute()) == {b"open"}
        # Nothing half applied: aggregates equal the orders that exist, whatever
        # the crash cut off.
        report = lg.check()
        assert report.ok, report.breaches
        assert report.orders >= len(acked)
        # A retry of an acknowledged order replays; it does not reserve twice.
        before = _open(lg)
        # A worker spawned late may have had nothing acknowledged before the crash.
        ids = next(ids for ids in acknowledged.values() if ids)
        i = int(ids[-1].rsplit("-", 1)[1])
        again = lg.reserve(
            Order(ids[-1], "T1", "S1", "A2", "XYZ", "buy" if i % 2 else "sell", "1", "1")
        )
        assert again.accepted and again.replayed and _open(lg) == before
    finally:
        srv.cleanup()


def _open(lg: Ledger) -> int:
    from ledger.facade.views import aggregates

    node = aggregates(lg.redis, lg.keys, "F1").get("firm:F1")
    return node.n if node else 0
