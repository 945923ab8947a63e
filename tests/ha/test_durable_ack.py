"""Durable acknowledgement: a change is acknowledged only once replicas hold it.

A stalled replica (SIGSTOP) never confirms, so every mutating call fails
closed within the timeout; the decision stays stored on the primary, and the
retry with the same id replays it once the replica is back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from ledger import Ledger, LedgerUnavailable
from ledger.store.durable import Durability, NotDurable, from_env
from tests.ha.conftest import Replicated
from tests.helpers import load, order

#: Long enough for a live replica on a busy machine: WAIT returns as soon as it confirms.
LIVE_MS = 10_000
#: A stalled replica never confirms; this only bounds how long each refusal takes.
STALLED_MS = 50


def durable_ledger(topo: Replicated, replicas: int = 1, timeout_ms: int = LIVE_MS) -> Ledger:
    return Ledger.from_url(
        topo.url,
        timeout_s=5.0,
        actor="test",
        durable_replicas=replicas,
        durable_timeout_ms=timeout_ms,
    )


def on_replica(topo: Replicated, lg: Ledger, order_id: str, i: int = 0) -> bool:
    return bool(topo.replica_client(i).exists(lg.keys.order("F1", order_id)))


def test_an_acknowledged_reserve_is_on_the_replica(replicated: Replicated) -> None:
    lg = durable_ledger(replicated)
    load(lg)
    assert lg.reserve(order("o1")).accepted
    # WAIT confirmed it: the replica holds it without any further waiting.
    assert on_replica(replicated, lg, "o1")
    assert lg.reserve_many([order("o2"), order("o3")])[1].accepted
    assert on_replica(replicated, lg, "o3")


def test_a_stalled_replica_fails_closed_and_the_retry_replays_once_durable(
    replicated: Replicated,
) -> None:
    lg = durable_ledger(replicated)
    load(lg)
    stalled = Ledger.from_url(
        replicated.url, timeout_s=5.0, durable_replicas=1, durable_timeout_ms=STALLED_MS
    )
    replicated.stall()
    with pytest.raises(NotDurable, match="0 of 1 replica"):
        stalled.reserve(order("o1"))
    # Stored on the primary all the same: it counts from the moment it was sent.
    assert lg.redis.exists(lg.keys.order("F1", "o1"))
    with pytest.raises(LedgerUnavailable):
        stalled.reserve(order("o1"))
    replicated.resume()
    retried = lg.reserve(order("o1"))
    assert retried.accepted and retried.replayed
    assert on_replica(replicated, lg, "o1")


def test_a_replay_on_a_fresh_connection_still_waits_for_the_replica(
    replicated: Replicated,
) -> None:
    # WAIT counts what the connection itself last wrote: a replay writes
    # nothing, so without the PUBLISH before WAIT a new connection would be
    # told "1 replica" for a decision the stalled replica never received.
    lg = durable_ledger(replicated)
    load(lg)
    replicated.stall()
    first = Ledger.from_url(
        replicated.url, timeout_s=5.0, durable_replicas=1, durable_timeout_ms=STALLED_MS
    )
    with pytest.raises(NotDurable):
        first.reserve(order("o1"))
    fresh = Ledger.from_url(
        replicated.url, timeout_s=5.0, durable_replicas=1, durable_timeout_ms=STALLED_MS
    )
    with pytest.raises(NotDurable):
        fresh.reserve(order("o1"))
    replicated.resume()


def _every_mutating_call(lg: Ledger) -> list[tuple[str, Callable[[], Any]]]:
    ov = {"duration": "30m", "ticket": "RISK-1"}
    return [
        ("reserve", lambda: lg.reserve(order("n1"))),
        ("reserve rejected", lambda: lg.reserve(order("n2", qty="999999"))),
        ("reserve_many", lambda: lg.reserve_many([order("n3")])),
        ("basket", lambda: lg.reserve_basket([order("n4")], basket_id="b1")),
        ("replace", lambda: lg.replace("live", "3", "100")),
        ("cancel", lambda: lg.cancel_request("live")),
        ("fill", lambda: lg.fill("live", "f1", "1", "100")),
        ("release", lambda: lg.release("live", "cancelled")),
        ("kill", lambda: lg.kill("desk:D2", by="ops", reason="test")),
        ("kill global", lambda: lg.kill("global", by="ops", reason="test")),
        ("unkill", lambda: lg.unkill("desk:D1", by="ops", reason="test")),
        ("state", lambda: lg.states.set("strategy:S2", "disabled", by="ops", reason="x")),
        ("prices", lambda: lg.prices.set({"XYZ": "100"}, by="feed")),
        ("resume", lambda: lg.prices.resume("XYZ", by="ops", reason="x")),
        (
            "override",
            lambda: lg.overrides.request("desk:D1", "max_gross_notional", "1", **ov, by="a"),
        ),
        ("stress", lambda: lg.stress.on("desk:D1", "0.5", by="ops", reason="x")),
        ("policy load", lambda: load(lg)),
    ]


def test_every_mutating_call_waits_for_the_replicas(replicated: Replicated) -> None:
    plain = Ledger.from_url(replicated.url, timeout_s=5.0, actor="test")
    load(plain)
    assert plain.reserve(order("live", qty="5")).accepted
    plain.kill("desk:D1", by="ops", reason="to lift")
    replicated.synced()
    lg = durable_ledger(replicated, timeout_ms=STALLED_MS)
    replicated.stall()
    refused = []
    for name, call in _every_mutating_call(lg):
        try:
            call()
        except NotDurable:
            refused.append(name)
    replicated.resume()
    assert refused == [name for name, _ in _every_mutating_call(lg)]


def test_two_replicas_with_one_required_keep_acknowledging_when_one_stalls(
    two_replicas: Replicated,
) -> None:
    lg = durable_ledger(two_replicas, replicas=1)
    load(lg)
    two_replicas.stall(0)
    assert lg.reserve(order("o1")).accepted
    assert on_replica(two_replicas, lg, "o1", i=1)
    strict = durable_ledger(two_replicas, replicas=2, timeout_ms=STALLED_MS)
    with pytest.raises(NotDurable, match="1 of 2 replica"):
        strict.reserve(order("o2"))
    two_replicas.resume(0)


def test_durability_off_never_waits(replicated: Replicated) -> None:
    lg = Ledger.from_url(replicated.url, timeout_s=5.0)
    load(lg)
    replicated.stall()
    assert lg.reserve(order("o1")).accepted
    replicated.resume()


def test_fsync_needs_waitaof(kind: str, replicated: Replicated) -> None:
    lg = Ledger.from_url(
        replicated.url, durable_replicas=1, durable_timeout_ms=LIVE_MS, durable_fsync=True
    )
    version = str(lg.redis.info("server")["redis_version"])
    has_waitaof = kind == "valkey" or tuple(map(int, version.split(".")[:2])) >= (7, 2)
    if has_waitaof:
        # The replica keeps no append-only file: it never confirms an fsync.
        lg.durable.setting = Durability(1, STALLED_MS, True)
        with pytest.raises(NotDurable, match="0 of 1"):
            load(lg)
        replica = replicated.replica_client()
        replica.config_set("appendonly", "yes")
        lg.durable.setting = Durability(1, LIVE_MS, True)
        load(lg)
        assert lg.reserve(order("o1")).accepted
    else:
        with pytest.raises(NotDurable, match="WAITAOF"):
            load(lg)
        # Refused before anything was written.
        assert lg.redis.dbsize() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"durable_replicas": -1}, "durable_replicas must be a whole number >= 0"),
        ({"durable_replicas": 1, "durable_timeout_ms": 0}, "durable_timeout_ms must be positive"),
        ({"durable_replicas": True}, "durable_replicas must be a whole number"),
        ({"durable_fsync": True}, "durable_fsync needs durable_replicas"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Ledger(redis.Redis(port=1), **kwargs)


def test_settings_from_the_environment() -> None:
    assert from_env({}) == Durability(0)
    assert from_env(
        {
            "LEDGER_DURABLE_REPLICAS": "2",
            "LEDGER_DURABLE_TIMEOUT_MS": "250",
            "LEDGER_DURABLE_FSYNC": "true",
        }
    ) == Durability(2, 250, True)
    with pytest.raises(ValueError, match="LEDGER_DURABLE_REPLICAS must be a whole number"):
        from_env({"LEDGER_DURABLE_REPLICAS": "two"})
    with pytest.raises(ValueError, match="LEDGER_DURABLE_TIMEOUT_MS must be positive"):
        from_env({"LEDGER_DURABLE_REPLICAS": "1", "LEDGER_DURABLE_TIMEOUT_MS": "0"})
    with pytest.raises(ValueError, match="LEDGER_DURABLE_FSYNC must be true or false"):
        from_env({"LEDGER_DURABLE_FSYNC": "maybe"})


def test_the_cli_fails_closed_when_the_replica_stalls(
    replicated: Replicated, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ledger.cli import EXIT_UNAVAILABLE, cli

    load(Ledger.from_url(replicated.url, timeout_s=5.0))
    replicated.synced()
    monkeypatch.setenv("LEDGER_DURABLE_REPLICAS", "1")
    monkeypatch.setenv("LEDGER_DURABLE_TIMEOUT_MS", str(STALLED_MS))
    replicated.stall()
    result = CliRunner().invoke(
        cli, ["--redis-url", replicated.url, "kill", "desk:D2", "--by", "ops", "--reason", "x"]
    )
    replicated.resume()
    assert result.exit_code == EXIT_UNAVAILABLE
    assert "0 of 1 replica" in result.output


def test_the_cli_refuses_a_bad_durability_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from ledger.cli import EXIT_BAD_INPUT, cli

    monkeypatch.setenv("LEDGER_DURABLE_REPLICAS", "two")
    result = CliRunner().invoke(cli, ["--redis-url", "redis://127.0.0.1:1/0", "check"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "LEDGER_DURABLE_REPLICAS must be a whole number, got 'two'" in result.output


def test_a_refused_write_before_the_wait_fails_closed(replicated: Replicated) -> None:
    # A user that may run the scripts but not publish on the durability
    # channel: its WAIT would count only what the script itself wrote, and a
    # replay writes nothing. Refused, never acknowledged as durable.
    admin = durable_ledger(replicated)
    load(admin)
    admin.redis.acl_setuser(
        "nochannel",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["ledger:events"],
        commands=["+@all"],
    )
    lg = Ledger.from_url(
        f"redis://nochannel:pw@127.0.0.1:{replicated.primary.port}/0",
        timeout_s=5.0,
        durable_replicas=1,
        durable_timeout_ms=LIVE_MS,
    )
    with pytest.raises(LedgerUnavailable, match="NoPermissionError"):
        lg.reserve(order("o1"))
    with pytest.raises(LedgerUnavailable, match="NoPermissionError"):
        lg.reserve(order("o1"))
