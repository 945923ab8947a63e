"""kill-5.lua and the facade's kill switches."""

from __future__ import annotations

import msgpack
import pytest

from ledger import InvalidInput, Ledger, Reason, UnknownScope
from ledger.errors import ReenableRefused
from ledger.facade.cancels import cancel_instructions
from tests.helpers import load, order


def test_kill_returns_open_orders_under_the_scope_only(lg):
    lg.reserve(order("a1", account="A1"))
    lg.reserve(order("a2", account="A2"))
    lg.reserve(order("t2", trader="T2", strategy="S2", account="A3"))
    lg.release("a2", reason="cancelled")
    assert set(lg.kill("desk:D1", by="ops", reason="r").open_orders) == {"a1"}
    assert set(lg.kill("firm:F1", by="ops", reason="r").open_orders) == {"a1", "t2"}
    assert set(lg.kill("global", by="ops", reason="r").open_orders) == {"a1", "t2"}
    assert lg.kill("trader:T2", by="ops", reason="r").open_orders == ("t2",)


def test_kill_blocks_on_the_very_next_decision_and_unkill_lifts_it(lg):
    other = Ledger(lg.redis)  # a second gateway sharing the server
    assert other.reserve(order("o1")).accepted
    lg.kill("strategy:S1", by="ops", reason="runaway")
    assert other.reserve(order("o2")).reason == Reason.KILL_SWITCH
    lg.unkill("strategy:S1", by="ops", reason="fixed")
    assert other.reserve(order("o3")).accepted


def test_kill_twice_and_unkill_twice_say_already(lg):
    assert not lg.kill("account:A1", by="ops", reason="r").already
    assert lg.kill("account:A1", by="ops2", reason="again").already
    kills = {k.scope: k for k in lg.kills()}
    assert (kills["account:A1"].by, kills["account:A1"].reason) == ("ops", "r")
    assert not lg.unkill("account:A1", by="ops", reason="ok").already
    assert lg.unkill("account:A1", by="ops", reason="ok").already
    assert lg.kills() == []


def test_global_kill_through_the_ledger_sets_the_plain_key(lg):
    lg.kill("global", by="ops-1", reason="exchange outage")
    assert lg.redis.get("ledger:kill:global") == b"exchange outage"
    k = lg.kills()[0]
    assert (k.scope, k.by, k.reason) == ("global", "ops-1", "exchange outage") and k.at_ms
    lg.unkill("global", by="ops-1", reason="back")
    assert lg.redis.exists("ledger:kill:global") == 0
    assert lg.reserve(order("o1")).accepted


def test_unkill_global_clears_a_key_set_by_hand(lg):
    lg.redis.set("ledger:kill:global", "by hand")
    assert lg.kills()[0].by == "unknown (set directly on Redis)"
    assert not lg.unkill("global", by="ops", reason="clear").already
    assert lg.reserve(order("o1")).accepted


def test_kill_of_unknown_scope_is_an_error_and_changes_nothing(lg):
    with pytest.raises(UnknownScope):
        lg.kill("desk:NOPE", by="ops", reason="r")
    for bad in ("desk", "planet:X", ""):
        with pytest.raises(InvalidInput):
            lg.kill(bad, by="ops", reason="r")
    with pytest.raises(InvalidInput):
        lg.kill("desk:D1", by="", reason="r")
    with pytest.raises(InvalidInput):
        lg.kill("desk:D1", by="ops", reason=" ")
    assert lg.kills() == []


def test_kills_and_unkills_are_audited_with_who_and_why(lg):
    lg.kill("desk:D1", by="ops-1", reason="feed anomaly")
    lg.unkill("desk:D1", by="ops-2", reason="feed fixed")
    records = [
        (r["op"], r["scope"], r["by"], r["why"])
        for r in lg.audit_tail(20)
        if r["op"] in ("kill", "unkill")
    ]
    assert records == [
        ("kill", "desk:D1", "ops-1", "feed anomaly"),
        ("unkill", "desk:D1", "ops-2", "feed fixed"),
    ]


def test_cluster_mode_mirrors_the_global_kill_into_the_firm_slot(redis_client):
    lg = Ledger(redis_client, cluster=True)
    load(lg)
    lg.kill("global", by="ops", reason="r")
    assert redis_client.get("ledger:{F1}:kill:global") == b"r"
    assert lg.reserve(order("o1")).reason == Reason.KILL_SWITCH
    lg.unkill("global", by="ops", reason="r")
    assert redis_client.exists("ledger:{F1}:kill:global") == 0
    assert lg.reserve(order("o2")).accepted


def test_unkill_of_a_scope_never_known_is_an_error(lg):
    with pytest.raises(UnknownScope):
        lg.unkill("desk:NOPE", by="ops", reason="r")


def test_policy_info_says_who_loaded_what(lg):
    info = lg.policy_info()
    assert (info["rev"], info["by"], info["source"]) == (1, "test", "")
    assert len(info["sha256"]) == 64 and info["at_ms"] > 0


# -- who may lift a kill --------------------------------------------------------------


def _kill_script(lg, op, scope, by, why):
    k = lg.keys
    keys = [k.policy("F1"), k.kills("F1"), k.global_kill("F1"), k.open_index("F1"), k.audit("F1")]
    code, already = lg.scripts.kill(keys, [op, scope, by, why, 1000, "F1"])[:2]
    return [code.decode(), already]


@pytest.mark.parametrize("scope", ["desk:D1", "global"])
def test_unkill_by_a_system_identity_is_refused_and_changes_nothing(lg, scope):
    lg.kill(scope, by="ops", reason="r")
    with pytest.raises(ReenableRefused, match="system identity"):
        lg.unkill(scope, by="system:watchdog", reason="looks fine")
    assert [k.scope for k in lg.kills()] == [scope]
    assert lg.reserve(order("o1")).reason == Reason.KILL_SWITCH
    assert lg.redis.exists("ledger:kill:global") == (scope == "global")
    # The script holds the rule on its own, for any other caller.
    assert _kill_script(lg, "unkill", scope, "system:watchdog", "r") == ["REENABLE_REFUSED", 1]
    assert [k.scope for k in lg.kills()] == [scope]


def test_a_kill_by_a_system_identity_is_recorded_as_automatic(lg):
    lg.kill("strategy:S1", by="system:watchdog", reason="heartbeat lost")
    record = msgpack.unpackb(lg.redis.hget("ledger:{F1}:kills", "strategy:S1"), raw=False)
    assert (record["by"], record["auto"]) == ("system:watchdog", 1)
    lg.kill("strategy:S2", by="ops", reason="r")
    record = msgpack.unpackb(lg.redis.hget("ledger:{F1}:kills", "strategy:S2"), raw=False)
    assert record["auto"] == 0
    assert not lg.unkill("strategy:S1", by="ops-carol", reason="heartbeat back").already


def test_an_automatic_kill_cannot_be_lifted_by_its_trigger(lg):
    record = {"by": "risk-bot", "why": "loss limit", "t": 1, "auto": 1}
    lg.redis.hset("ledger:{F1}:kills", "desk:D1", msgpack.packb(record))
    with pytest.raises(ReenableRefused, match="risk-bot"):
        lg.unkill("desk:D1", by="risk-bot", reason="recovered")
    assert _kill_script(lg, "unkill", "desk:D1", "risk-bot", "r") == ["REENABLE_REFUSED", 1]
    assert [k.scope for k in lg.kills()] == ["desk:D1"]
    # Both refusals are on record: the facade's and the script's.
    refused = [r for r in lg.audit_tail(20) if r.get("code") == "REENABLE_REFUSED"]
    assert [(r["op"], r["by"]) for r in refused] == [("unkill", "risk-bot")] * 2
    assert not lg.unkill("desk:D1", by="ops-carol", reason="reviewed").already


def test_an_automatic_global_kill_keeps_its_plain_key_when_refused(lg):
    lg.kill("global", by="ops", reason="r")
    lg.redis.hset("ledger:kill:global:meta", mapping={"by": "risk-bot", "auto": 1})
    with pytest.raises(ReenableRefused):
        lg.unkill("global", by="risk-bot", reason="recovered")
    assert lg.redis.exists("ledger:kill:global") == 1
    assert not lg.unkill("global", by="ops-carol", reason="reviewed").already


def test_the_kill_script_refuses_an_unkill_without_a_reason(lg):
    lg.kill("desk:D1", by="ops", reason="r")
    assert _kill_script(lg, "unkill", "desk:D1", "ops", " ") == ["REENABLE_REFUSED", 1]
    assert [k.scope for k in lg.kills()] == ["desk:D1"]


def test_cancel_instructions_of_a_global_kill_cover_every_open_order(lg):
    lg.reserve(order("a1", qty="10", side="sell"))
    lg.reserve(order("t2", qty="7", trader="T2", strategy="S2", account="A3"))
    lg.reserve(order("gone", qty="3"))
    lg.fill("a1", "f1", "4", "100")
    result = lg.kill("global", by="ops", reason="halt")
    lg.release("gone", reason="cancelled")  # closed after the kill: nothing left to cancel
    cancels = sorted(cancel_instructions(lg, result), key=lambda c: c.order_id)
    assert [c.to_dict() for c in cancels] == [
        {
            "action": "cancel",
            "order_id": "a1",
            "account": "A1",
            "strategy": "S1",
            "trader": "T1",
            "symbol": "XYZ",
            "side": "sell",
            "leaves_qty": 6,
        },
        {
            "action": "cancel",
            "order_id": "t2",
            "account": "A3",
            "strategy": "S2",
            "trader": "T2",
            "symbol": "XYZ",
            "side": "buy",
            "leaves_qty": 7,
        },
    ]
