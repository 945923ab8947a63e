"""reserve-n.lua: every output code, and that a reject changes nothing."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from ledger import Ledger, Order, Reason
from tests.helpers import TIGHT, agg, load, order


def snapshot(lg):
    return {k: v for k, v in lg.redis.hgetall(lg.keys.agg("F1")).items() if b"|m|" not in k}


def test_accept_reserves_at_all_five_levels(lg):
    d = lg.reserve(order("o1", qty="10", price="100.50"))
    assert (d.accepted, d.reason, d.notional, d.replayed) == (True, Reason.OK, 100500, False)
    for scope in ("firm:F1", "desk:D1", "account:A1", "strategy:S1", "trader:T1"):
        a = agg(lg, scope)
        assert (a.ob, a.os, a.fb, a.fs, a.n) == (100500, 0, 0, 0, 1)
    assert agg(lg, "desk:D2").n == 0


def test_notional_rounds_up_to_minor_units(lg):
    assert lg.reserve(order("o1", qty="3", price="0.333")).notional == 100  # 0.999 -> 1.00
    assert lg.reserve(order("o2", qty="1", price="0.001")).notional == 1


def test_same_order_twice_reserves_once(lg):
    first = lg.reserve(order("o1"))
    again = lg.reserve(order("o1"))
    assert first.accepted and again.accepted and again.replayed
    assert agg(lg, "trader:T1").ob == first.notional and agg(lg, "trader:T1").n == 1


def test_equal_price_spelt_differently_is_the_same_order(lg):
    lg.reserve(order("o1", price="100"))
    assert lg.reserve(order("o1", price="100.00")).replayed


def test_reused_id_with_other_fields_is_duplicate_and_changes_nothing(lg):
    lg.reserve(order("o1"))
    before = snapshot(lg)
    d = lg.reserve(order("o1", qty="11"))
    assert (d.accepted, d.reason) == (False, Reason.DUPLICATE_ORDER_ID)
    assert snapshot(lg) == before


def test_rejected_decision_is_replayed_for_the_same_id(lg):
    d = lg.reserve(order("big", qty="1001"))
    assert d.reason == Reason.MAX_ORDER_QTY
    again = lg.reserve(order("big", qty="1001"))
    assert again.reason == Reason.MAX_ORDER_QTY and again.replayed


@pytest.mark.parametrize("scope", ["firm:F1", "desk:D1", "account:A1", "strategy:S1", "trader:T1"])
def test_kill_at_every_scope_of_the_path(lg, scope):
    lg.kill(scope, by="ops", reason="test")
    d = lg.reserve(order("o1"))
    assert (d.reason, d.scope) == (Reason.KILL_SWITCH, scope)
    assert snapshot(lg) == {}
    lg.unkill(scope, by="ops", reason="clear")
    assert lg.reserve(order("o2")).accepted


def test_kill_elsewhere_does_not_block(lg):
    lg.kill("desk:D2", by="ops", reason="test")
    assert lg.reserve(order("o1")).accepted


def test_plain_global_key_stops_everything(lg):
    lg.redis.set("ledger:kill:global", "set by hand")
    d = lg.reserve(order("o1"))
    assert (d.reason, d.scope) == (Reason.KILL_SWITCH, "global")
    lg.redis.delete("ledger:kill:global")
    assert lg.reserve(order("o2")).accepted


def test_no_policy_is_a_reject(redis_client):
    d = Ledger(redis_client).reserve(order("o1"))
    assert (d.accepted, d.reason) == (False, Reason.NO_POLICY)


@pytest.mark.parametrize(
    "fields,scope",
    [
        ({"account": "A9"}, "account:A9"),
        ({"trader": "T9"}, "trader:T9"),
        ({"strategy": "S9"}, "strategy:S9"),
    ],
)
def test_unknown_node_is_a_reject(lg, fields, scope):
    d = lg.reserve(order("o1", **fields))
    assert (d.accepted, d.reason, d.scope) == (False, Reason.UNKNOWN_NODE, scope)
    assert snapshot(lg) == {}


def test_not_entitled(lg):
    # S1 is not entitled to A3.
    d = lg.reserve(order("o1", trader="T2", strategy="S1", account="A3"))
    assert (d.reason, d.scope) == (Reason.NOT_ENTITLED, "strategy:S1")
    # T1 is not entitled to A3 (S2 is).
    d = lg.reserve(order("o2", trader="T1", strategy="S2", account="A3"))
    assert (d.reason, d.scope) == (Reason.NOT_ENTITLED, "trader:T1")
    assert snapshot(lg) == {}


def test_trader_not_entitled_to_strategy(redis_client):
    doc = copy.deepcopy(TIGHT)
    doc["strategies"][1]["accounts"] = ["A1", "A3"]
    lg = Ledger(redis_client)
    load(lg, doc)
    d = lg.reserve(order("o1", trader="T1", strategy="S2", account="A1"))
    assert (d.reason, d.scope) == (Reason.NOT_ENTITLED, "trader:T1")


@pytest.mark.parametrize(
    "field,value",
    [
        ("qty", 10.0),
        ("qty", "-5"),
        ("qty", "0"),
        ("qty", "1e3"),
        ("qty", "1.5"),
        ("qty", "abc"),
        ("qty", str(2**53)),
        ("price", 100.5),
        ("price", "0"),
        ("price", "-1"),
        ("price", "NaN"),
        ("price", Decimal("Infinity")),
        ("price", "1" * 40),
        ("side", "short"),
        ("order_id", ""),
        ("order_id", "a{b}"),
        ("order_id", "x" * 129),
        ("symbol", ""),
        ("trader", "bad id"),
    ],
)
def test_invalid_input_is_rejected_and_changes_nothing(lg, field, value):
    fields = dict(order("o1").__dict__)
    fields[field] = value
    d = lg.reserve(Order(**fields))
    assert (d.accepted, d.reason) == (False, Reason.INVALID_ORDER)
    assert d.message.startswith(field)
    assert snapshot(lg) == {}
    assert lg.redis.exists(lg.keys.order("F1", "o1")) == 0


def test_qty_times_price_beyond_exact_range_is_invalid(lg):
    d = lg.reserve(order("o1", qty="1000000000", price="99999999.99"))
    assert d.reason == Reason.INVALID_ORDER and "exact" in d.message


def test_max_order_qty(lg):
    assert lg.reserve(order("ok", qty="1000", price="1")).accepted
    d = lg.reserve(order("o1", qty="1001", price="1"))
    assert (d.reason, d.scope, d.limit, d.requested) == (
        Reason.MAX_ORDER_QTY,
        "account:A1",
        1000,
        1001,
    )


def test_max_order_notional(lg):
    assert lg.reserve(order("ok", qty="200", price="100")).accepted  # exactly 20000.00
    d = lg.reserve(order("o1", qty="200", price="100.01"))
    assert (d.reason, d.scope, d.limit, d.requested) == (
        Reason.MAX_ORDER_NOTIONAL,
        "account:A1",
        2_000_000,
        2_000_200,
    )


def test_open_orders_limit(lg):
    for i in range(6):
        assert lg.reserve(order(f"o{i}", qty="1", price="1")).accepted
    d = lg.reserve(order("o6", qty="1", price="1", account="A2"))
    assert (d.reason, d.scope, d.limit, d.used, d.requested) == (
        Reason.OPEN_ORDERS_LIMIT,
        "desk:D1",
        6,
        6,
        1,
    )


def test_gross_limit_exactly_at_and_one_cent_over(lg):
    assert lg.reserve(order("o1", qty="200", price="100", account="A2")).accepted
    assert lg.reserve(order("o2", qty="200", price="100", account="A2", side="sell")).accepted
    d = lg.reserve(order("o3", qty="1", price="0.01", account="A2"))  # T1 gross at 40000
    assert (d.reason, d.scope, d.limit, d.used, d.requested) == (
        Reason.GROSS_LIMIT,
        "trader:T1",
        4_000_000,
        4_000_000,
        1,
    )
    assert agg(lg, "trader:T1").ob + agg(lg, "trader:T1").os == 4_000_000


def test_net_limit_blocks_increase_but_not_reduction(lg):
    assert lg.reserve(order("b1", qty="300", price="100", account="A2")).accepted  # net 30000
    d = lg.reserve(order("b2", qty="1", price="1", account="A2"))
    assert (d.reason, d.scope, d.limit, d.used, d.requested) == (
        Reason.NET_LIMIT,
        "trader:T1",
        3_000_000,
        3_000_000,
        100,
    )
    # A sell does not worsen the worst-case net: never blocked by it.
    assert lg.reserve(order("s1", qty="50", price="100", side="sell", account="A2")).accepted


def test_message_rate_counts_accepted_messages_only(lg):
    for i in range(4):
        assert lg.reserve(order(f"o{i}", qty="1", price="1")).accepted
    for i in range(4):
        assert lg.cancel_request(f"o{i}").accepted
    d = lg.reserve(order("o9", qty="1", price="1"))
    assert (d.reason, d.scope, d.limit, d.used, d.requested) == (
        Reason.MESSAGE_RATE,
        "strategy:S1",
        8,
        8,
        1,
    )
    # The reject was not counted, and did not reserve.
    assert agg(lg, "strategy:S1").n == 4
    d = lg.reserve(order("o10", qty="1", price="1"))
    assert d.reason == Reason.MESSAGE_RATE and d.used == 8


def test_shadow_limit_is_recorded_not_enforced(redis_client):
    doc = copy.deepcopy(TIGHT)
    doc["traders"][0]["limits"]["shadow"] = ["max_gross_notional"]
    lg = Ledger(redis_client)
    load(lg, doc)
    assert lg.reserve(order("o1", qty="200", price="100", account="A2")).accepted
    assert lg.reserve(order("o2", qty="200", price="100", account="A2", side="sell")).accepted
    d = lg.reserve(order("o2b", qty="100", price="1", account="A2", side="sell"))
    assert d.accepted and d.reason == Reason.OK
    assert [(b.reason, b.scope, b.limit, b.used, b.requested) for b in d.shadow] == [
        (Reason.GROSS_LIMIT, "trader:T1", 4_000_000, 4_000_000, 10_000)
    ]
    audit = [r for r in lg.audit_tail(10) if r.get("order_id") == "o2b"]
    assert audit and audit[-1]["shadow"] == 1
    # The enforced desk limit still bites behind the shadow one.
    d = lg.reserve(order("o3", qty="500", price="100", account="A2"))
    assert (d.reason, d.scope) == (Reason.GROSS_LIMIT, "desk:D1")


def test_stale_routing_is_refreshed_and_decided_on_the_new_policy(redis_client):
    lg, other = Ledger(redis_client), Ledger(redis_client)
    load(lg)
    assert lg.reserve(order("o1")).accepted  # lg caches A1 -> D1
    doc = copy.deepcopy(TIGHT)
    desks = doc["firms"][0]["desks"]
    desks[1]["accounts"].append(desks[0]["accounts"].pop(0))  # A1 moves to D2
    load(other, doc)
    d = lg.reserve(order("o2"))
    assert d.accepted
    assert agg(lg, "desk:D2").n == 1 and agg(lg, "desk:D1").n == 1


def test_every_decision_is_audited(lg):
    lg.reserve(order("o1"))
    lg.reserve(order("o2", qty="1001"))
    records = [r for r in lg.audit_tail(50) if r["op"] == "reserve"]
    assert [(r["order_id"], r["code"], r["by"]) for r in records] == [
        ("o1", "OK", "test"),
        ("o2", "MAX_ORDER_QTY", "test"),
    ]
    assert records[1]["scope"] == "account:A1" and records[1]["t"] > 0


@pytest.mark.parametrize("fields", [{"trader": "T9"}, {"strategy": "S9"}, {"account": "A9"}])
def test_a_reject_for_an_unknown_node_is_audited_once(lg, fields):
    lg.reserve(order("x1", **fields))
    assert [r["order_id"] for r in lg.audit_tail(10) if r["op"] == "reserve"].count("x1") <= 1
