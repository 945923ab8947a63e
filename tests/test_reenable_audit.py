"""A refused re-enable is in the audit trail, on every path: unkill (global too),
strategy and account enable, symbol resume, whether the facade or a script refuses it."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import Ledger, ReenableRefused

SYSTEM = "system:watchdog"


def refused(lg: Ledger) -> list[dict[str, Any]]:
    return [r for r in lg.audit_tail(100) if r.get("code") == "REENABLE_REFUSED"]


@pytest.mark.parametrize("scope", ["desk:D1", "global"])
def test_a_refused_unkill_is_audited(lg, scope):
    lg.kill(scope, by="ops", reason="feed anomaly")
    with pytest.raises(ReenableRefused):
        lg.unkill(scope, by=SYSTEM, reason="looks fine")
    records = refused(lg)
    assert {(r["op"], r["scope"], r["by"], r["why"]) for r in records} == {
        ("unkill", scope, SYSTEM, "looks fine")
    }
    streams = {r["stream"] for r in records}
    # A global switch is recorded where its kill was: the global stream and the firm's.
    want = {"ledger:{F1}:audit", "ledger:audit"} if scope == "global" else {"ledger:{F1}:audit"}
    assert streams == want
    assert [k.scope for k in lg.kills()] == [scope]


def test_a_refused_unkill_of_an_automatic_kill_by_its_trigger_is_audited(lg):
    lg.kill("global", by="ops", reason="r")
    lg.redis.hset("ledger:kill:global:meta", mapping={"by": "risk-bot", "auto": 1})
    with pytest.raises(ReenableRefused):
        lg.unkill("global", by="risk-bot", reason="recovered")
    assert {(r["op"], r["by"]) for r in refused(lg)} == {("unkill", "risk-bot")}


@pytest.mark.parametrize("scope", ["strategy:S1", "account:A1"])
def test_a_refused_enable_is_audited(lg, scope):
    lg.states.set(scope, "disabled", by="ops", reason="vol")
    with pytest.raises(ReenableRefused, match="system identity"):
        lg.states.enable(scope, by=SYSTEM, reason="self-heal")
    (record,) = refused(lg)
    assert (record["op"], record["scope"], record["by"], record["why"]) == (
        "state_enable",
        scope,
        SYSTEM,
        "self-heal",
    )
    assert lg.states.list()[0].state == "disabled"


def test_a_refused_symbol_resume_is_audited(lg):
    with pytest.raises(ReenableRefused, match="system identity"):
        lg.prices.resume("AAPL", by=SYSTEM, reason="feed back")
    (record,) = refused(lg)
    assert (record["op"], record["symbol"], record["by"], record["why"]) == (
        "resume",
        "AAPL",
        SYSTEM,
        "feed back",
    )
