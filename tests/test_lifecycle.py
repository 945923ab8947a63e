"""replace-11, cancel-4, fill-8, release-7: every output code and the exposure they move."""

from __future__ import annotations

import pytest

from ledger import InvalidInput, Reason
from tests.helpers import agg, order


def state(lg, scope="trader:T1"):
    a = agg(lg, scope)
    return (a.ob, a.os, a.fb, a.fs, a.n)


# -- replace -------------------------------------------------------------------


def test_replace_moves_the_reservation_by_the_difference(lg):
    lg.reserve(order("o1", qty="10", price="100"))
    d = lg.replace("o1", qty="20", price="101")
    assert (d.accepted, d.notional) == (True, 202_000)
    assert state(lg) == (202_000, 0, 0, 0, 1)
    d = lg.replace("o1", qty="5", price="100")
    assert d.accepted and state(lg) == (50_000, 0, 0, 0, 1)


def test_replace_after_partial_fill_reserves_only_leaves(lg):
    lg.reserve(order("o1", qty="10", price="100"))
    lg.fill("o1", "f1", qty="4", price="100")
    d = lg.replace("o1", qty="12", price="100")
    assert d.accepted and d.notional == 80_000  # 8 leaves
    assert state(lg) == (80_000, 0, 40_000, 0, 1)


def test_replace_rechecks_limits_and_changes_nothing_on_reject(lg):
    lg.reserve(order("o1", qty="100", price="100"))
    d = lg.replace("o1", qty="1001", price="1")
    assert (d.reason, d.scope) == (Reason.MAX_ORDER_QTY, "account:A1")
    d = lg.replace("o1", qty="201", price="100")
    assert d.reason == Reason.MAX_ORDER_NOTIONAL
    lg.reserve(order("o2", qty="200", price="100", account="A2"))
    d = lg.replace("o1", qty="200", price="100")  # net would reach 40000 > 30000
    assert (d.reason, d.scope, d.requested) == (Reason.NET_LIMIT, "trader:T1", 1_000_000)
    assert state(lg) == (3_000_000, 0, 0, 0, 2)


def test_replace_codes(lg):
    assert lg.replace("nope", qty="1", price="1").reason == Reason.UNKNOWN_ORDER
    lg.reserve(order("o1", qty="10", price="1"))
    lg.fill("o1", "f1", qty="4", price="1")
    d = lg.replace("o1", qty="4", price="1")
    assert (d.reason, d.used, d.requested) == (Reason.INVALID_ORDER, 4, 4)
    assert d.message.startswith("qty: the new total qty (4) must be above the qty already filled")
    assert lg.replace("o1", qty="1.5", price="1").reason == Reason.INVALID_ORDER
    lg.kill("trader:T1", by="ops", reason="r")
    assert lg.replace("o1", qty="9", price="1").reason == Reason.KILL_SWITCH
    lg.unkill("trader:T1", by="ops", reason="r")
    lg.release("o1", reason="cancelled")
    assert lg.replace("o1", qty="9", price="1").reason == Reason.ORDER_CLOSED


# -- cancel request ----------------------------------------------------------------


def test_cancel_request_counts_a_message_and_keeps_the_reservation(lg):
    lg.reserve(order("o1"))
    d = lg.cancel_request("o1")
    assert d.accepted and state(lg)[0] == 100_000
    rows = {r.limit_name: r.used for r in lg.utilization("strategy:S1")}
    assert rows["messages.all.per_10s"] == 2


def test_cancel_request_is_not_blocked_by_a_kill(lg):
    lg.reserve(order("o1"))
    lg.kill("global", by="ops", reason="halt")
    assert lg.cancel_request("o1").accepted


def test_cancel_request_codes(lg):
    assert lg.cancel_request("nope").reason == Reason.UNKNOWN_ORDER
    assert lg.cancel_request("bad id").reason == Reason.INVALID_ORDER
    lg.reserve(order("o1"))
    lg.release("o1", reason="venue reject")
    assert lg.cancel_request("o1").reason == Reason.ORDER_CLOSED
    for i in range(6):
        lg.reserve(order(f"m{i}", qty="1", price="1"))
    assert lg.cancel_request("m0").accepted  # the 8th message in 10 s
    d = lg.cancel_request("m0")
    assert (d.reason, d.scope, d.limit) == (Reason.MESSAGE_RATE, "strategy:S1", 8)


# -- fills -----------------------------------------------------------------------


def test_partial_then_full_fill(lg):
    lg.reserve(order("o1", qty="10", price="100"))
    f = lg.fill("o1", "f1", qty="4", price="99.995")
    assert (f.ok, f.leaves, f.cum_qty, f.reserved, f.fill_notional) == (True, 6, 4, 60_000, 39_998)
    assert state(lg) == (60_000, 0, 39_998, 0, 1)
    f = lg.fill("o1", "f2", qty="6", price="100")
    assert (f.leaves, f.reserved) == (0, 0)
    assert state(lg) == (0, 0, 99_998, 0, 0)
    assert lg.kill("trader:T1", by="ops", reason="r").open_orders == ()
    assert lg.release("o1", reason="done").already_closed


def test_fill_id_seen_before_changes_nothing(lg):
    lg.reserve(order("o1", qty="10", price="100", side="sell"))
    lg.fill("o1", "f1", qty="4", price="100")
    before = state(lg)
    again = lg.fill("o1", "f1", qty="4", price="100")
    assert again.duplicate and again.fill_notional == 0 and state(lg) == before
    assert before == (0, 60_000, 0, 40_000, 1)


def test_overfill_and_fill_after_release_are_recorded(lg):
    lg.reserve(order("o1", qty="10", price="100"))
    f = lg.fill("o1", "f1", qty="12", price="100")
    assert f.overfill and f.leaves == 0 and state(lg) == (0, 0, 120_000, 0, 0)
    lg.reserve(order("o2", qty="10", price="100"))
    lg.release("o2", reason="cancelled")
    late = lg.fill("o2", "f1", qty="3", price="100")
    assert late.ok and state(lg) == (0, 0, 150_000, 0, 0)


def test_fill_codes_and_bad_input(lg):
    assert lg.fill("nope", "f1", qty="1", price="1").reason == Reason.UNKNOWN_ORDER
    lg.reserve(order("rej", qty="5000"))
    assert lg.fill("rej", "f1", qty="1", price="1").reason == Reason.UNKNOWN_ORDER
    lg.reserve(order("o1"))
    for qty, price in (("0", "1"), ("1", "-1"), (1.5, "1"), ("1", 2.0)):
        with pytest.raises(InvalidInput):
            lg.fill("o1", "f9", qty=qty, price=price)
    with pytest.raises(InvalidInput):
        lg.fill("o1", "bad fill id", qty="1", price="1")
    assert state(lg) == (100_000, 0, 0, 0, 1)


# -- release -----------------------------------------------------------------------


def test_release_frees_and_is_idempotent(lg):
    lg.reserve(order("o1", qty="10", price="100"))
    r = lg.release("o1", reason="cancelled")
    assert (r.ok, r.released, r.already_closed) == (True, 100_000, False)
    assert state(lg) == (0, 0, 0, 0, 0)
    r = lg.release("o1", reason="cancelled")
    assert (r.ok, r.released, r.already_closed) == (True, 0, True)
    assert lg.release("nope", reason="x").reason == Reason.UNKNOWN_ORDER
    with pytest.raises(InvalidInput):
        lg.release("o1", reason="")


def test_everything_released_returns_aggregates_to_zero(lg):
    for i in range(5):
        lg.reserve(order(f"o{i}", qty=str(i + 1), price="10.01", side="buy" if i % 2 else "sell"))
    lg.replace("o1", qty="3", price="10")
    lg.fill("o2", "f", qty="1", price="10")
    for i in range(5):
        lg.release(f"o{i}", reason="eod")
    for scope in ("firm:F1", "desk:D1", "account:A1", "strategy:S1", "trader:T1"):
        a = agg(lg, scope)
        assert (a.ob, a.os, a.n) == (0, 0, 0)
    assert lg.check().ok
