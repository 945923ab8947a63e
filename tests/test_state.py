"""setState-3.lua and ``Ledger.states``: runtime state of strategies and accounts.

Entries are checked where reserve reads them (``P:{F}:controls`` field
``s|S``, docs/controls-layout.md). An automatic disable is written the way the
fill throttle writes it, straight into the controls hash.
"""

from __future__ import annotations

import copy
from typing import Any

import msgpack
import pytest

from ledger import InvalidInput, Ledger, Reason, UnknownScope
from ledger.errors import ReenableRefused
from tests.helpers import TIGHT, load, order

CONTROLS = "ledger:{F1}:controls"


def entry(lg: Ledger, scope: str) -> dict[str, Any] | None:
    raw = lg.redis.hget(CONTROLS, f"s|{scope}")
    return msgpack.unpackb(raw, raw=False) if raw is not None else None


def state_audit(lg: Ledger) -> list[dict[str, Any]]:
    return [r for r in lg.audit_tail(100) if str(r["op"]).startswith("state_")]


def set_automatically(lg: Ledger, scope: str, by: str = "system:fill-throttle") -> None:
    """What the fill throttle writes when it trips."""
    record = {
        "st": "disabled",
        "by": by,
        "why": "fill throttle",
        "t": 1_700_000_000_000,
        "auto": 1,
        "cause": "50 fills in 10 s",
    }
    lg.redis.hset(CONTROLS, f"s|{scope}", msgpack.packb(record))


def run_script(lg: Ledger, op: str, scope: str, by: str, why: str) -> list[Any]:
    k = lg.keys
    raw = lg.scripts.set_state(
        [k.policy("F1"), k.controls("F1"), k.audit("F1")], [op, scope, by, why, 1000]
    )
    return [x.decode() if isinstance(x, bytes) else x for x in raw]


# -- set and enable -------------------------------------------------------------------


def test_disable_writes_the_entry_reserve_reads(lg):
    change = lg.states.set("strategy:S1", "disabled", by="ops-alice", reason="runaway")
    assert (change.scope, change.state, change.previous, change.already) == (
        "strategy:S1",
        "disabled",
        "enabled",
        False,
    )
    rec = entry(lg, "strategy:S1")
    assert {k: rec[k] for k in ("st", "by", "why", "auto")} == {
        "st": "disabled",
        "by": "ops-alice",
        "why": "runaway",
        "auto": 0,
    }
    assert rec["t"] > 1_600_000_000_000 and "cause" not in rec


def test_the_same_state_again_keeps_the_first_record(lg):
    lg.states.set("account:A1", "reduce_only", by="ops-alice", reason="first")
    first = entry(lg, "account:A1")
    again = lg.states.set("account:A1", "reduce_only", by="ops-bob", reason="second")
    assert again.already and again.previous == "reduce_only"
    assert entry(lg, "account:A1") == first


def test_reduce_only_replaces_disabled_and_enable_deletes_the_entry(lg):
    lg.states.set("strategy:S2", "disabled", by="ops-alice", reason="r1")
    change = lg.states.set("strategy:S2", "reduce_only", by="ops-alice", reason="r2")
    assert (change.previous, change.already) == ("disabled", False)
    assert entry(lg, "strategy:S2")["st"] == "reduce_only"
    lifted = lg.states.enable("strategy:S2", by="ops-bob", reason="checked")
    assert (lifted.state, lifted.previous, lifted.already) == ("enabled", "reduce_only", False)
    assert lg.redis.hexists(CONTROLS, "s|strategy:S2") == 0
    assert lg.states.enable("strategy:S2", by="ops-bob", reason="again").already


def test_a_runtime_state_survives_a_policy_load(lg):
    lg.states.set("strategy:S1", "disabled", by="ops-alice", reason="runaway")
    load(lg)
    assert entry(lg, "strategy:S1")["st"] == "disabled"
    assert [(s.scope, s.state, s.source) for s in lg.states.list()] == [
        ("strategy:S1", "disabled", "runtime")
    ]


# -- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        ("strategy:NOPE", UnknownScope),
        ("account:NOPE", UnknownScope),
        ("desk:D1", InvalidInput),
        ("trader:T1", InvalidInput),
        ("strategy:", InvalidInput),
        ("S1", InvalidInput),
    ],
)
def test_only_a_strategy_or_account_of_the_policy_takes_a_state(lg, scope, error):
    with pytest.raises(error):
        lg.states.set(scope, "disabled", by="ops-alice", reason="r")
    assert lg.redis.exists(CONTROLS) == 0
    assert state_audit(lg) == []
    assert lg.states.list() == []


@pytest.mark.parametrize("scope", ["strategy:NOPE", "desk:D1", "firm:F1"])
def test_the_script_refuses_a_scope_that_cannot_carry_a_state(lg, scope):
    assert run_script(lg, "disable", scope, "ops-alice", "r") == ["UNKNOWN_NODE", "enabled", 1]
    assert lg.redis.exists(CONTROLS) == 0
    (record,) = state_audit(lg)
    assert (record["op"], record["scope"], record["code"]) == (
        "state_disable",
        scope,
        "UNKNOWN_NODE",
    )


def test_bad_state_by_or_reason_is_refused(lg):
    with pytest.raises(InvalidInput) as exc:
        lg.states.set("strategy:S1", "paused", by="ops-alice", reason="r")
    assert exc.value.field == "state"
    for by, reason, field in (
        ("", "r", "by"),
        ("ops", " ", "reason"),
        ("ops", "x" * 501, "reason"),
    ):
        with pytest.raises(InvalidInput) as exc:
            lg.states.set("strategy:S1", "disabled", by=by, reason=reason)
        assert exc.value.field == field
    assert lg.redis.exists(CONTROLS) == 0


@pytest.mark.parametrize("reason", ["", "   "])
def test_enable_needs_a_reason(lg, reason):
    lg.states.set("strategy:S1", "disabled", by="ops-alice", reason="runaway")
    with pytest.raises(InvalidInput) as exc:
        lg.states.enable("strategy:S1", by="ops-bob", reason=reason)
    assert exc.value.field == "reason"
    assert entry(lg, "strategy:S1")["st"] == "disabled"
    # The script holds the rule on its own, for any other caller.
    assert run_script(lg, "enable", "strategy:S1", "ops-bob", reason)[0] == "REENABLE_REFUSED"
    assert entry(lg, "strategy:S1")["st"] == "disabled"


def test_a_system_identity_may_neither_enable_nor_set_by_hand(lg):
    lg.states.set("strategy:S1", "disabled", by="ops-alice", reason="runaway")
    with pytest.raises(ReenableRefused, match="system identity"):
        lg.states.enable("strategy:S1", by="system:watchdog", reason="looks fine")
    assert run_script(lg, "enable", "strategy:S1", "system:watchdog", "fine")[0] == (
        "REENABLE_REFUSED"
    )
    with pytest.raises(InvalidInput) as exc:
        lg.states.set("strategy:S2", "disabled", by="system:ops", reason="r")
    assert exc.value.field == "by"
    assert entry(lg, "strategy:S1")["by"] == "ops-alice"
    assert entry(lg, "strategy:S2") is None


def test_an_automatic_disable_needs_a_person_other_than_its_trigger(lg):
    set_automatically(lg, "strategy:S1", by="risk-bot")
    with pytest.raises(ReenableRefused, match="risk-bot"):
        lg.states.enable("strategy:S1", by="risk-bot", reason="back to normal")
    # Loosening to reduce-only is a re-enable too.
    assert run_script(lg, "reduce_only", "strategy:S1", "risk-bot", "r")[0] == "REENABLE_REFUSED"
    assert entry(lg, "strategy:S1")["auto"] == 1
    change = lg.states.enable("strategy:S1", by="ops-carol", reason="throttle reviewed")
    assert (change.previous, change.already) == ("disabled", False)
    assert entry(lg, "strategy:S1") is None


def test_the_fill_throttle_disable_is_lifted_by_a_person(lg):
    set_automatically(lg, "strategy:S1")
    with pytest.raises(ReenableRefused):
        lg.states.enable("strategy:S1", by="system:fill-throttle", reason="auto")
    assert lg.states.enable("strategy:S1", by="ops-carol", reason="reviewed").previous == (
        "disabled"
    )


def test_a_state_left_on_a_dropped_node_can_still_be_lifted(lg):
    lg.states.set("strategy:S2", "disabled", by="ops-alice", reason="r")
    doc = copy.deepcopy(TIGHT)
    doc["strategies"] = [s for s in doc["strategies"] if s["id"] != "S2"]
    doc["traders"] = [t for t in doc["traders"] if t["id"] != "T2"]
    load(lg, doc)
    with pytest.raises(UnknownScope):
        lg.states.set("strategy:S2", "reduce_only", by="ops-alice", reason="r")
    assert lg.states.enable("strategy:S2", by="ops-bob", reason="cleanup").previous == "disabled"
    assert lg.redis.hexists(CONTROLS, "s|strategy:S2") == 0
    with pytest.raises(UnknownScope):
        lg.states.enable("strategy:S2", by="ops-bob", reason="again")


# -- audit and listing ----------------------------------------------------------------


def test_every_change_is_audited_with_the_previous_state(lg):
    lg.states.set("strategy:S1", "disabled", by="ops-alice", reason="runaway")
    lg.states.set("strategy:S1", "reduce_only", by="ops-alice", reason="unwind")
    lg.states.enable("strategy:S1", by="ops-bob", reason="done")
    set_automatically(lg, "strategy:S2")
    lg.states.enable("strategy:S2", by="ops-carol", reason="throttle reviewed")
    fields = ("op", "scope", "by", "why", "prev", "prev_by", "auto", "cause", "code")
    assert [tuple(r[f] for f in fields) for r in state_audit(lg)] == [
        ("state_disable", "strategy:S1", "ops-alice", "runaway", "enabled", None, 0, None, "OK"),
        (
            "state_reduce_only",
            "strategy:S1",
            "ops-alice",
            "unwind",
            "disabled",
            "ops-alice",
            0,
            None,
            "OK",
        ),
        (
            "state_enable",
            "strategy:S1",
            "ops-bob",
            "done",
            "reduce_only",
            "ops-alice",
            0,
            None,
            "OK",
        ),
        (
            "state_enable",
            "strategy:S2",
            "ops-carol",
            "throttle reviewed",
            "disabled",
            "system:fill-throttle",
            1,
            "50 fills in 10 s",
            "OK",
        ),
    ]


def test_a_refused_enable_is_audited_and_changes_nothing(lg):
    set_automatically(lg, "strategy:S1", by="risk-bot")
    before = lg.redis.hgetall(CONTROLS)
    with pytest.raises(ReenableRefused):
        lg.states.enable("strategy:S1", by="risk-bot", reason="r")
    assert lg.redis.hgetall(CONTROLS) == before
    (record,) = state_audit(lg)
    assert (record["by"], record["auto"], record["code"]) == ("risk-bot", 1, "REENABLE_REFUSED")


def test_list_shows_who_why_and_the_cause_of_an_automatic_disable(lg):
    lg.states.set("account:A2", "reduce_only", by="ops-alice", reason="unwind only")
    set_automatically(lg, "strategy:S1")
    listed = {s.scope: s for s in lg.states.list()}
    assert set(listed) == {"account:A2", "strategy:S1"}
    auto = listed["strategy:S1"]
    assert (auto.firm, auto.state, auto.source, auto.auto, auto.cause, auto.by) == (
        "F1",
        "disabled",
        "runtime",
        True,
        "50 fills in 10 s",
        "system:fill-throttle",
    )
    manual = listed["account:A2"].to_dict()
    assert manual["by"] == "ops-alice" and manual["reason"] == "unwind only"
    assert manual["auto"] is False and manual["cause"] is None and manual["at_ms"] > 0


def test_list_covers_every_firm(redis_client):
    doc = copy.deepcopy(TIGHT)
    doc["firms"].append({"id": "F2", "desks": [{"id": "D9", "accounts": [{"id": "A9"}]}]})
    doc["strategies"].append({"id": "S9", "accounts": ["A9"]})
    lg = Ledger(redis_client, actor="test")
    load(lg, doc)
    lg.states.set("strategy:S9", "disabled", by="ops-alice", reason="r")
    lg.states.set("account:A1", "reduce_only", by="ops-alice", reason="r")
    assert [(s.firm, s.scope) for s in lg.states.list()] == [
        ("F1", "account:A1"),
        ("F2", "strategy:S9"),
    ]
    assert redis_client.hexists("ledger:{F2}:controls", "s|strategy:S9")


def test_list_shows_the_policy_state_and_the_runtime_state_wins(redis_client):
    doc = copy.deepcopy(TIGHT)
    doc["strategies"][1]["state"] = "disabled"
    lg = Ledger(redis_client, actor="test")
    load(lg, doc)
    (s2,) = lg.states.list()
    assert (s2.scope, s2.state, s2.source, s2.policy_state) == (
        "strategy:S2",
        "disabled",
        "policy",
        "disabled",
    )
    lg.states.set("strategy:S2", "reduce_only", by="ops-alice", reason="unwind")
    (s2,) = lg.states.list()
    assert (s2.state, s2.source, s2.policy_state) == ("reduce_only", "runtime", "disabled")
    lifted = lg.states.enable("strategy:S2", by="ops-bob", reason="r")
    assert lifted.policy_state == "disabled"


# -- what reserve makes of it (needs the reserve that reads the controls hash) ---------


def test_an_order_of_a_disabled_strategy_is_refused_until_re_enabled(lg):
    assert lg.reserve(order("o1")).accepted
    lg.states.set("strategy:S1", "disabled", by="ops-alice", reason="runaway")
    refused = lg.reserve(order("o2"))
    assert (refused.reason, refused.scope) == (Reason.STRATEGY_DISABLED, "strategy:S1")
    lg.states.enable("strategy:S1", by="ops-bob", reason="fixed")
    assert lg.reserve(order("o3")).accepted


def test_an_order_of_a_disabled_account_is_refused(lg):
    lg.states.set("account:A2", "disabled", by="ops-alice", reason="review")
    refused = lg.reserve(order("o1", account="A2"))
    assert (refused.reason, refused.scope) == (Reason.STRATEGY_DISABLED, "account:A2")
    assert lg.reserve(order("o2", account="A1")).accepted


def test_a_reduce_only_strategy_refuses_an_order_that_grows_its_position(lg):
    lg.states.set("strategy:S1", "reduce_only", by="ops-alice", reason="unwind")
    assert lg.reserve(order("o1", side="buy")).reason == Reason.REDUCE_ONLY


def test_the_fill_throttle_disables_until_a_person_re_enables(redis_client):
    doc = copy.deepcopy(TIGHT)
    doc["strategies"][0]["limits"]["fill_throttle"] = {"trigger_count": 2, "window_s": 10}
    lg = Ledger(redis_client, actor="test")
    load(lg, doc)
    for i in range(3):
        assert lg.reserve(order(f"o{i}", qty="1")).accepted
        lg.fill(f"o{i}", f"f{i}", "1", "100")
    (state,) = lg.states.list()
    assert (state.scope, state.state, state.by, state.auto) == (
        "strategy:S1",
        "disabled",
        "system:fill-throttle",
        True,
    )
    assert state.cause and "fills" in state.cause
    assert lg.reserve(order("o9", qty="1")).reason == Reason.STRATEGY_DISABLED
    with pytest.raises(ReenableRefused):
        lg.states.enable("strategy:S1", by="system:fill-throttle", reason="auto")
    lifted = lg.states.enable("strategy:S1", by="ops-carol", reason="algo checked")
    assert lifted.previous == "disabled"
    enables = [r for r in state_audit(lg) if r["op"] == "state_enable"]
    # The refused attempt is on record too.
    (refused,) = [r for r in enables if r["code"] == "REENABLE_REFUSED"]
    assert refused["by"] == "system:fill-throttle"
    (record,) = [r for r in enables if r["code"] == "OK"]
    assert (record["auto"], record["cause"], record["prev_by"]) == (
        1,
        state.cause,
        "system:fill-throttle",
    )
    assert lg.reserve(order("o10", qty="1")).accepted
