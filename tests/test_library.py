"""The scripts as one Redis Functions library: who loads it, what runs without it.

The whole suite runs through the library (the test user may load it); these
tests pin what differs: a user without FUNCTION runs the same text by
EVALSHA and takes the library up once an admin loads it, a flushed library
is loaded again, the state of one call never reaches the next, and both
paths leave the same ledger behind.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import ledger.store.library as library_mod
from ledger import Ledger, Order, Reason, parse_policy
from ledger.facade.views import aggregates
from ledger.policy.money import MAX_EXACT
from ledger.store.library import _merge
from ledger.store.scripts import ScriptSet, library
from tests.helpers import TIGHT, load, order

VERSION = library()[0]


def _calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def _libraries(client: redis.Redis) -> list[bytes]:
    """Names of the libraries the server holds (FUNCTION LIST answers flat pairs)."""
    return [
        dict(zip(lib[::2], lib[1::2], strict=True))[b"library_name"]
        for lib in client.function_list()
    ]


def _script_calls(client: redis.Redis, work: Any) -> tuple[int, int]:
    """(FCALL, EVALSHA) calls while ``work()`` runs."""
    client.config_resetstat()
    work()
    c = _calls(client)
    return c.get("fcall", 0), c.get("evalsha", 0)


@pytest.fixture
def restricted(redis_client: redis.Redis, redis_url: str) -> Iterator[redis.Redis]:
    """A user with the gateway's script rights: FCALL and EVALSHA, no FUNCTION."""
    name = "lib-test-gateway"
    redis_client.acl_setuser(
        name,
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-function"],
    )
    client = redis.Redis.from_url(redis_url, username=name, password="pw")
    yield client
    client.close()
    redis_client.acl_deluser(name)


def test_every_call_of_an_admin_client_is_an_fcall(redis_client: redis.Redis) -> None:
    lg = Ledger(redis_client, actor="test")
    load(lg)
    fcalls, evalshas = _script_calls(
        redis_client,
        lambda: (
            [lg.reserve(order(f"o{i}")) for i in range(3)]
            + [lg.reserve_many([order("m1"), order("m2")])]
            + [lg.release("o0", reason="cancelled"), lg.fill("o1", "f1", qty="10", price="100")]
        ),
    )
    assert (fcalls, evalshas) == (7, 0)
    assert f"ledger_{VERSION}".encode() in _libraries(redis_client)


def test_a_user_without_function_runs_the_scripts_by_evalsha_until_an_admin_loads_them(
    redis_client: redis.Redis, restricted: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_client.function_flush()
    monkeypatch.setattr(library_mod, "RECHECK_S", 0.0)
    admin = Ledger(redis_client, actor="test", functions=False)
    load(admin)
    gw = Ledger(restricted, actor="gw")
    fcalls, evalshas = _script_calls(redis_client, lambda: gw.reserve(order("g1")))
    assert gw.reserve(order("g1")).replayed
    # The probe found nothing; the order ran by EVALSHA (after NOSCRIPT: never sent before).
    assert fcalls == 1 and evalshas >= 1
    assert not gw.scripts.library.ready
    assert _libraries(redis_client) == []

    Ledger(redis_client, actor="test").ping()  # an admin's client loads this version
    fcalls, evalshas = _script_calls(redis_client, lambda: gw.reserve(order("g2")))
    assert (fcalls, evalshas) == (2, 0)  # the probe, then the order
    assert gw.scripts.library.ready
    assert gw.check().ok


def test_an_older_library_on_the_server_is_not_used(
    redis_client: redis.Redis, restricted: redis.Redis
) -> None:
    redis_client.function_flush()
    old = "#!lua name=ledger_000000000000\n" + (
        "redis.register_function('reserve_000000000000', function() return 'old' end)\n"
    )
    redis_client.function_load(old)
    lg = Ledger(redis_client, actor="test", functions=False)
    load(lg)
    gw = Ledger(restricted, actor="gw")
    assert gw.reserve(order("o1")).accepted
    assert not gw.scripts.library.ready


def test_a_flushed_library_is_loaded_again(redis_client: redis.Redis) -> None:
    lg = Ledger(redis_client, actor="test")
    load(lg)
    assert lg.reserve(order("o1")).accepted
    redis_client.function_flush()
    assert lg.reserve(order("o2")).accepted
    # reserve_many is a pipeline: a client that knows the library is gone
    # looks for it (and loads it) before sending.
    redis_client.function_flush()
    lg.scripts.library.lost()
    assert [d.accepted for d in lg.reserve_many([order("o3"), order("o4")])] == [True, True]
    assert agg(lg).n == 4


def agg(lg: Ledger) -> Any:
    return aggregates(lg.redis, lg.keys, "F1")["firm:F1"]


def test_one_calls_state_never_reaches_the_next(redis_client: redis.Redis) -> None:
    # The library keeps its locals between calls: a refused inexact sum must
    # not leave its mark on the order after it.
    doc = {
        "version": 1,
        "currency": "USD",
        "minor_units": 0,
        "firms": [{"id": "F", "desks": [{"id": "D", "accounts": [{"id": "A"}]}]}],
        "strategies": [{"id": "S", "accounts": ["A"]}],
        "traders": [{"id": "T", "accounts": ["A"], "strategies": ["S"]}],
    }
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(parse_policy(doc, source="exact"), by="test")
    assert lg.reserve(Order("small", "T", "S", "A", "XYZ", "buy", "1", "1")).accepted
    assert lg.reserve(Order("big", "T", "S", "A", "XYZ", "buy", str(MAX_EXACT - 1), "1")).accepted
    assert lg.fill("big", "f1", MAX_EXACT - 1, "1").ok
    assert lg.fill("small", "f1", 2, "1").reason is Reason.INVALID_ORDER
    # Exact on its own: refused only if the call before had left its mark.
    assert lg.fill("small", "f2", 1, "1").ok
    assert lg.check().ok


def test_the_library_and_evalsha_leave_the_same_ledger(redis_client: redis.Redis) -> None:
    answers = []
    for functions, prefix in ((True, "fn"), (False, "ev")):
        lg = Ledger(redis_client, prefix=prefix, actor="test", functions=functions)
        load(lg)
        seen = [lg.reserve(order(f"o{i}", qty=str(10 + i))) for i in range(12)]
        seen.append(lg.fill("o1", "f1", qty="5", price="101"))
        seen.append(lg.release("o2", reason="cancelled"))
        seen.append(lg.replace("o3", qty="20", price="99"))
        answers.append((seen, aggregates(lg.redis, lg.keys, "F1")))
    assert answers[0] == answers[1]
    assert any(not d.accepted for d in answers[0][0][:12])  # the tight policy refused some


def test_include_orders_that_contradict_stop_the_build() -> None:
    merged = _merge([["common", "money", "path"], ["common", "exposure", "path"]])
    assert merged == ["common", "money", "exposure", "path"]
    with pytest.raises(RuntimeError, match="orders that conflict"):
        _merge([["a", "b"], ["b", "a"]])


def test_the_library_holds_one_function_per_script() -> None:
    version, text = library()
    assert text.startswith(f"#!lua name=ledger_{version}\n")
    assert text.count("redis.register_function(") == len(ScriptSet.__annotations__)


def _qty_cap(cap: int) -> dict[str, Any]:
    doc = copy.deepcopy(TIGHT)
    doc["firms"][0]["desks"][0]["accounts"][0]["limits"]["max_order_qty"] = cap
    return doc


def test_records_kept_between_calls_never_outlive_their_policy(redis_client: redis.Redis) -> None:
    # The library keeps unpacked policy records under the load's id: every new
    # load, even one of the same revision after a flush, is read afresh.
    lg = Ledger(redis_client, actor="test")
    load(lg, _qty_cap(1000))
    assert lg.reserve(order("o1", qty="900", price="1")).accepted
    load(lg, _qty_cap(800))
    assert lg.reserve(order("o2", qty="900", price="1")).reason is Reason.MAX_ORDER_QTY
    redis_client.flushall()
    lg = Ledger(redis_client, actor="test")
    load(lg, _qty_cap(1000))  # revision 1 again, as before the first load
    assert lg.reserve(order("o3", qty="900", price="1")).accepted
    redis_client.flushall()
    lg = Ledger(redis_client, actor="test")
    load(lg, _qty_cap(800))
    refused = lg.reserve(order("o4", qty="900", price="1"))
    assert (refused.reason, refused.limit) == (Reason.MAX_ORDER_QTY, 800)


def test_a_policy_without_a_load_id_is_read_on_every_call(redis_client: redis.Redis) -> None:
    # As one loaded before load ids existed: nothing is kept, every call unpacks.
    lg = Ledger(redis_client, actor="test")
    load(lg, _qty_cap(1000))
    redis_client.hdel(lg.keys.policy("F1"), "meta|lid")
    assert lg.reserve(order("o1", qty="900", price="1")).accepted
    redis_client.hset(
        lg.keys.policy("F1"),
        "account:A1",
        redis_client.hget(lg.keys.policy("F1"), "account:A1").replace(
            b"\xcd\x03\xe8", b"\xcd\x03\x20"
        ),
    )
    refused = lg.reserve(order("o2", qty="900", price="1"))
    assert (refused.reason, refused.limit) == (Reason.MAX_ORDER_QTY, 800)


def test_a_call_on_a_broken_connection_is_sent_again_once(redis_client: redis.Redis) -> None:
    lg = Ledger(redis_client, actor="test")
    load(lg)
    assert lg.reserve(order("o1")).accepted
    wire = lg.scripts.reserve.wire
    assert wire is not None
    conn = wire._connection()
    conn.send_command("CLIENT", "ID")
    killed = conn.read_response()
    redis_client.client_kill_filter(_id=killed)
    # The server closed the wire's connection: the call fails on it and is sent again.
    assert lg.reserve(order("o2")).accepted
    conn = wire._connection()
    conn.send_command("CLIENT", "ID")
    assert conn.read_response() != killed
    assert agg(lg).n == 2
