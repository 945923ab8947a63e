"""Crash, restart and unavailability: nothing acknowledged is lost, nothing passes unchecked."""

from __future__ import annotations

import os
import signal

import pytest

from ledger import Ledger, LedgerUnavailable, Reason
from ledger.facade.views import aggregates
from ledger.store.embedded import EmbeddedRedis, free_port
from tests.conftest import BINARIES
from tests.helpers import load, order


@pytest.fixture(params=sorted(BINARIES))
def aof_server(request, tmp_path):
    srv = EmbeddedRedis(binary=BINARIES[request.param], datadir=str(tmp_path), appendonly=True)
    srv.start()
    yield srv
    srv.stop()


def crash_and_restart(srv: EmbeddedRedis) -> None:
    assert srv.process is not None
    os.kill(srv.process.pid, signal.SIGKILL)
    srv.process.wait()
    srv.process = None
    srv.start()


def test_acknowledged_state_survives_a_kill_9(aof_server):
    lg = Ledger.from_url(aof_server.url, timeout_s=2.0)
    load(lg)
    accepted = []
    for i in range(40):
        o = order(f"o{i}", qty=str(1 + i % 7), price="10.5", side="buy" if i % 3 else "sell")
        if lg.reserve(o).accepted:
            accepted.append(o)
    lg.fill(accepted[0].order_id, "f1", qty="1", price="10")
    lg.release(accepted[1].order_id, reason="cancelled")
    lg.kill("desk:D2", by="ops", reason="before crash")
    before = aggregates(lg.redis, lg.keys, "F1")
    crash_and_restart(aof_server)
    # Same client object: it reconnects, and reloads the scripts Redis lost.
    assert aggregates(lg.redis, lg.keys, "F1") == before
    assert len(accepted) > 5
    assert lg.reserve(accepted[2]).replayed
    assert lg.fill(accepted[0].order_id, "f1", qty="1", price="10").duplicate
    assert [k.scope for k in lg.kills()] == ["desk:D2"]
    assert lg.reserve(order("after")).accepted
    assert lg.check().ok


def test_scripts_flushed_from_the_server_are_reloaded(redis_client):
    lg = Ledger(redis_client)
    load(lg)
    redis_client.script_flush()
    assert lg.reserve(order("o1")).accepted
    redis_client.script_flush()
    assert lg.ping()
    assert all(redis_client.script_exists(*[b.script.sha for b in lg.scripts.all()]))


def test_unreachable_ledger_raises_one_exception_type():
    lg = Ledger.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    for call in (
        lambda: lg.reserve(order("o1")),
        lambda: lg.replace("o1", qty="1", price="1"),
        lambda: lg.fill("o1", "f1", qty="1", price="1"),
        lambda: lg.release("o1", reason="x"),
        lambda: lg.kill("global", by="ops", reason="x"),
        lambda: lg.utilization(),
    ):
        with pytest.raises(LedgerUnavailable):
            call()


def test_server_stopped_mid_run_then_back(aof_server):
    lg = Ledger.from_url(aof_server.url, timeout_s=0.5)
    load(lg)
    assert lg.reserve(order("o1")).accepted
    aof_server.stop()
    with pytest.raises(LedgerUnavailable):
        lg.reserve(order("o2"))
    aof_server.start()
    assert lg.reserve(order("o2")).accepted
    assert lg.reserve(order("o1")).reason == Reason.OK
