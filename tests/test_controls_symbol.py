"""Symbol controls of reserve-n.lua and replace-11.lua: symbol and venue entitlement,
tiers and their per-order caps, reference prices (missing, stale, halted) and the
price collar.

Every reject is checked to leave the reservations exactly as they were
(``exposure``: node aggregates, positions, open-order index), and every
accepted step to keep aggregates and positions equal to the sums over orders
(``lg.check()``).
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger import Ledger, Reason
from tests.fakeclock.plugin import Clock
from tests.helpers import (
    CONTROLS_PRICES,
    accepted,
    controls_doc,
    controls_node,
    controls_order,
    exposure,
    load_controls,
    order,
    refused,
)

#: 2031-11-17T04:26:40.123Z: far from the real date, with a millisecond part.
T0 = 1_952_656_000_123


# -- symbol and venue entitlement --------------------------------------------------------


def test_account_trades_only_its_symbols_and_groups(lg):
    doc = controls_doc()
    controls_node(doc, "account:A1")["symbols"] = ["group:tech", "XYZ"]
    load_controls(lg, doc)
    # AAPL and MSFT through the group, XYZ by name.
    accepted(lg, order("o1", symbol="AAPL", price="200"))
    accepted(lg, order("o2", symbol="MSFT", price="400"))
    accepted(lg, order("o3", symbol="XYZ"))
    d = refused(lg, order("o4", symbol="ABC", price="50"), Reason.NOT_ENTITLED, "account:A1")
    assert d.notional == 0
    # A2 lists no symbols: not restricted.
    accepted(lg, order("o5", symbol="ABC", price="50", account="A2"))


def test_symbol_refusal_comes_before_the_tier_lookup(lg):
    # A symbol the account may not trade is NOT_ENTITLED even if no tier knows it.
    doc = controls_doc()
    controls_node(doc, "account:A1")["symbols"] = ["XYZ"]
    load_controls(lg, doc)
    refused(lg, order("o1", symbol="ZZZ"), Reason.NOT_ENTITLED, "account:A1")
    refused(lg, order("o2", symbol="ZZZ", account="A2"), Reason.UNKNOWN_SYMBOL, "symbol:ZZZ")


def test_account_trades_only_at_its_venues(lg):
    doc = controls_doc()
    controls_node(doc, "account:A1")["venues"] = ["XNAS", "XNYS"]
    load_controls(lg, doc)
    accepted(lg, controls_order("o1", venue="XNAS"))
    accepted(lg, controls_order("o2", venue="XNYS", qty="11"))
    refused(lg, controls_order("o3", venue="BATS", qty="12"), Reason.NOT_ENTITLED, "account:A1")
    # An order that names no venue cannot be shown to go to an allowed one.
    refused(lg, controls_order("o4", venue=None, qty="13"), Reason.NOT_ENTITLED, "account:A1")
    # A2 lists no venues: any venue, or none, is fine.
    accepted(lg, controls_order("o5", venue="BATS", account="A2"))
    accepted(lg, controls_order("o6", venue=None, account="A2", qty="11"))


def test_symbol_and_venue_restrictions_hold_together(lg):
    doc = controls_doc()
    a1 = controls_node(doc, "account:A1")
    a1["symbols"], a1["venues"] = ["XYZ"], ["XNAS"]
    load_controls(lg, doc)
    accepted(lg, controls_order("o1", venue="XNAS"))
    refused(lg, controls_order("o2", venue="XNYS"), Reason.NOT_ENTITLED, "account:A1")
    refused(
        lg,
        controls_order("o3", venue="XNAS", symbol="ABC", price="50"),
        Reason.NOT_ENTITLED,
        "account:A1",
    )


# -- tiers -------------------------------------------------------------------------------


def test_symbol_in_no_tier_is_unknown(lg):
    load_controls(lg, controls_doc())
    d = refused(lg, order("o1", symbol="ZZZ"), Reason.UNKNOWN_SYMBOL, "symbol:ZZZ")
    assert (d.limit, d.used, d.requested) == (None, None, None)
    # Even with a reference price: tiers decide which symbols trade at all.
    lg.prices.set({"ZZZ": "100"}, by="feed")
    refused(lg, order("o2", symbol="ZZZ"), Reason.UNKNOWN_SYMBOL, "symbol:ZZZ")
    accepted(lg, order("o3", symbol="XYZ"))


def test_without_tiers_no_symbol_control_runs(lg):
    load_controls(lg, controls_doc(tiers=False))
    # No tier, no reference price, no collar: any symbol at any price.
    accepted(lg, order("o1", symbol="ZZZ", price="3.21"))
    accepted(lg, order("o2", symbol="XYZ", price="1"))


def test_tier_qty_cap_is_the_smaller_of_tier_and_node(lg):
    doc = controls_doc()
    load_controls(lg, doc, {**CONTROLS_PRICES, "MSFT": "10", "XYZ": "10"})
    # large: max_order_qty 800 below A1's 1000.
    accepted(lg, order("o1", symbol="MSFT", qty="800", price="10"))
    d = refused(
        lg, order("o2", symbol="MSFT", qty="801", price="10"), Reason.MAX_ORDER_QTY, "tier:large"
    )
    assert (d.limit, d.used, d.requested) == (800, 0, 801)
    # A2's own 500 is below the tier's 800.
    accepted(lg, order("o3", symbol="MSFT", qty="500", price="10", account="A2"))
    d = refused(
        lg,
        order("o4", symbol="MSFT", qty="501", price="10", account="A2"),
        Reason.MAX_ORDER_QTY,
        "account:A2",
    )
    assert (d.limit, d.used, d.requested) == (500, 0, 501)
    # mid has no qty cap: A1's 1000 is the only one.
    accepted(lg, order("o5", symbol="XYZ", qty="1000", price="10"))
    d = refused(
        lg, order("o6", symbol="XYZ", qty="1001", price="10"), Reason.MAX_ORDER_QTY, "account:A1"
    )
    assert (d.limit, d.requested) == (1000, 1001)


def test_tier_notional_cap_is_the_smaller_of_tier_and_node(lg):
    doc = controls_doc()
    controls_node(doc, "account:A2")["limits"]["max_order_notional"] = "10000"
    load_controls(lg, doc)
    # large: 15000.00 below A1's 20000.00.
    d = accepted(lg, order("o1", symbol="AAPL", qty="75", price="200"))
    assert d.notional == 1_500_000
    d = refused(
        lg,
        order("o2", symbol="AAPL", qty="75", price="200.01"),
        Reason.MAX_ORDER_NOTIONAL,
        "tier:large",
    )
    assert (d.limit, d.used, d.requested) == (1_500_000, 0, 1_500_075)
    # A2's own 10000.00 is below the tier's.
    accepted(lg, order("o3", symbol="AAPL", qty="50", price="200", account="A2"))
    d = refused(
        lg,
        order("o4", symbol="AAPL", qty="50", price="200.01", account="A2"),
        Reason.MAX_ORDER_NOTIONAL,
        "account:A2",
    )
    assert (d.limit, d.requested) == (1_000_000, 1_000_050)
    # mid has no notional cap: A1's 20000.00 is the only one.
    accepted(lg, order("o5", symbol="XYZ", qty="200", price="100"))
    d = refused(
        lg,
        order("o6", symbol="XYZ", qty="200", price="100.01"),
        Reason.MAX_ORDER_NOTIONAL,
        "account:A1",
    )
    assert (d.limit, d.requested) == (2_000_000, 2_000_200)


# -- reference prices --------------------------------------------------------------------


def test_no_reference_price_is_stale(lg):
    load_controls(lg, controls_doc(), {"AAPL": "200", "XYZ": "100"})
    d = refused(
        lg, order("o1", symbol="ABC", price="50"), Reason.REFERENCE_PRICE_STALE, "symbol:ABC"
    )
    assert (d.limit, d.used) == (60_000, None)
    lg.prices.set({"ABC": "50"}, by="feed")
    accepted(lg, order("o2", symbol="ABC", price="50"))


def test_a_price_older_than_max_age_is_stale(clock: Clock):
    lg = clock.ledger
    doc = controls_doc()
    doc["reference_prices"]["max_age_ms"] = 200
    clock.set_ms(T0)
    load_controls(lg, doc)
    clock.set_ms(T0 + 200)
    accepted(lg, order("o1"))
    clock.set_ms(T0 + 201)
    d = refused(lg, order("o2"), Reason.REFERENCE_PRICE_STALE, "symbol:XYZ")
    assert (d.limit, d.used) == (200, 201)
    # A new price makes the symbol trade again at once.
    lg.prices.set({"XYZ": "100"}, by="feed")
    accepted(lg, order("o3"))


def test_price_age_boundary_is_exact(clock: Clock):
    lg = clock.ledger
    doc = controls_doc()
    doc["reference_prices"]["max_age_ms"] = 5000
    clock.set_ms(T0)
    load_controls(lg, doc)
    clock.set_ms(T0 + 5000)
    # Exactly max_age_ms old: still fresh.
    accepted(lg, order("o1"))
    clock.set_ms(T0 + 5001)
    d = refused(lg, order("o2"), Reason.REFERENCE_PRICE_STALE, "symbol:XYZ")
    assert (d.limit, d.used) == (5000, 5001)
    lg.prices.set({"XYZ": "100"}, by="feed")
    accepted(lg, order("o3"))


def test_a_jump_beyond_max_jump_halts_until_resumed(lg):
    load_controls(lg, controls_doc())
    # Exactly 10 % does not halt.
    (row,) = lg.prices.set({"XYZ": "110"}, by="feed")
    assert (row.status, row.jump_bps) == ("set", 1000)
    accepted(lg, order("o1", price="110"))
    # 110 -> 121.02 is 10.02 %: halted, whatever the order's price.
    (row,) = lg.prices.set({"XYZ": "121.02"}, by="feed")
    assert row.status == "halted"
    d = refused(lg, order("o2", price="121.02"), Reason.SYMBOL_HALTED, "symbol:XYZ")
    assert (d.limit, d.used, d.requested) == (None, None, None)
    refused(lg, order("o3", price="110"), Reason.SYMBOL_HALTED, "symbol:XYZ")
    # Other symbols trade on.
    accepted(lg, order("o4", symbol="ABC", price="50"))
    # Prices that follow do not lift the halt.
    (row,) = lg.prices.set({"XYZ": "121"}, by="feed")
    assert row.status == "already_halted"
    refused(lg, order("o5", price="121"), Reason.SYMBOL_HALTED, "symbol:XYZ")
    # A halted symbol cannot be replaced into either.
    before = exposure(lg)
    d = lg.replace("o1", "11", "110")
    assert (d.reason, d.scope) == (Reason.SYMBOL_HALTED, "symbol:XYZ")
    assert exposure(lg) == before
    lg.prices.resume("XYZ", by="ops-alice", reason="feed checked")
    # The collar now centres on the last price stored (121).
    accepted(lg, order("o6", price="121"))
    refused(lg, order("o7", price="110"), Reason.PRICE_COLLAR, "tier:mid")


def test_a_halt_is_checked_without_tiers_too(lg):
    doc = controls_doc(tiers=False)
    doc["reference_prices"] = {"max_age_ms": 60_000, "max_jump_pct": "10"}
    load_controls(lg, doc)
    lg.prices.set({"XYZ": "100"}, by="feed")
    accepted(lg, order("o1", price="5"))
    lg.prices.set({"XYZ": "200"}, by="feed")
    refused(lg, order("o2", price="5"), Reason.SYMBOL_HALTED, "symbol:XYZ")


# -- the price collar --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "inside", "outside", "over_bps"),
    [
        # mid, 100 bps around 100: 99.00 .. 101.00.
        ("XYZ", "101", "101.01", 101),
        ("XYZ", "99", "98.99", 101),
        # large, 50 bps around 200: 199.00 .. 201.00.
        ("AAPL", "201", "201.01", 51),
        ("AAPL", "199", "198.99", 51),
        # More decimals than the reference price: compared exactly.
        ("XYZ", "101.000000", "101.000001", 101),
        ("XYZ", "99.000000001", "98.999999999", 101),
    ],
)
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_price_collar_edge(lg, symbol, inside, outside, over_bps, side):
    load_controls(lg, controls_doc())
    tier = "tier:large" if symbol == "AAPL" else "tier:mid"
    accepted(lg, order("in", symbol=symbol, price=inside, side=side))
    d = refused(
        lg, order("out", symbol=symbol, price=outside, side=side), Reason.PRICE_COLLAR, tier
    )
    # limit: the collar; used: the distance from the reference, bps rounded up.
    assert (d.limit, d.used) == (100 if tier == "tier:mid" else 50, over_bps)


def test_collar_follows_a_new_reference_price(lg):
    load_controls(lg, controls_doc())
    refused(lg, order("o1", price="102"), Reason.PRICE_COLLAR, "tier:mid")
    lg.prices.set({"XYZ": "102"}, by="feed")
    accepted(lg, order("o2", price="102"))
    refused(lg, order("o3", price="100.97"), Reason.PRICE_COLLAR, "tier:mid")


# -- replace re-checks the symbol controls -----------------------------------------------


def order_fields(lg: Ledger, order_id: str) -> list[Any]:
    return lg.redis.hmget(lg.keys.order("F1", order_id), "qty", "pn", "ps", "res")


def test_replace_rechecks_the_collar_on_the_new_price(lg):
    load_controls(lg, controls_doc())
    accepted(lg, order("o1", qty="10", price="100"))
    for price in ("101.01", "98.99"):
        before, fields = exposure(lg), order_fields(lg, "o1")
        d = lg.replace("o1", "10", price)
        assert (d.accepted, d.reason, d.scope, d.limit, d.used) == (
            False,
            Reason.PRICE_COLLAR,
            "tier:mid",
            100,
            101,
        )
        assert exposure(lg) == before and order_fields(lg, "o1") == fields
    d = lg.replace("o1", "10", "101")
    assert (d.accepted, d.notional) == (True, 101_000)
    assert order_fields(lg, "o1") == [b"10", b"101", b"0", b"101000"]
    assert lg.check().ok


def test_replace_rechecks_tier_caps_and_price_age(clock: Clock):
    lg = clock.ledger
    doc = controls_doc()
    doc["reference_prices"]["max_age_ms"] = 300
    clock.set_ms(T0)
    load_controls(lg, doc, {**CONTROLS_PRICES, "MSFT": "10"})
    accepted(lg, order("o1", symbol="MSFT", qty="100", price="10"))
    before = exposure(lg)
    d = lg.replace("o1", "801", "10")
    assert (d.reason, d.scope, d.limit, d.requested) == (
        Reason.MAX_ORDER_QTY,
        "tier:large",
        800,
        801,
    )
    assert exposure(lg) == before
    d = lg.replace("o1", "800", "10")
    assert d.accepted and lg.check().ok
    clock.set_ms(T0 + 301)
    before = exposure(lg)
    d = lg.replace("o1", "700", "10")
    assert (d.reason, d.scope, d.limit) == (Reason.REFERENCE_PRICE_STALE, "symbol:MSFT", 300)
    assert exposure(lg) == before


def test_collar_is_exact_at_sixteen_decimals(lg):
    # Exactly 80 bps from the reference passes; one unit of the 16th decimal more does not.
    doc = controls_doc()
    doc["tiers"]["mid"]["price_collar_bps"] = 80
    load_controls(lg, doc, prices={**CONTROLS_PRICES, "XYZ": "0.893571354"})
    accepted(lg, order("in", qty="1", price="0.900719924832"))
    d = refused(
        lg, order("out", qty="1", price="0.9007199248320001"), Reason.PRICE_COLLAR, "tier:mid"
    )
    assert (d.limit, d.used) == (80, 81)
