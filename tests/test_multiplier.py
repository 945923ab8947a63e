"""Contract multipliers: a tier's (or one symbol's) ``multiplier`` makes an order's notional
qty x price x multiplier, rounded up to minor units, on reserve, replace, fill and reconcile
alike, with the 2^53 guard on the product and on the notional."""

from __future__ import annotations

from typing import Any

from ledger import Ledger, Order, Reason
from ledger.policy.model import parse_policy
from tests.helpers import accepted, controls_doc, exposure, refused

PRICES = {"AAPL": "200", "MSFT": "400", "XYZ": "100", "ABC": "50", "ES": "5000", "NQ": "18000"}
PRICES |= {"MINI": "0.01", "BIG": "1"}


def futures_doc() -> dict[str, Any]:
    """The controls policy without money limits, plus futures: ES at 50, NQ at 20 (its own
    multiplier over the tier's), and two symbols for rounding and the exact range."""
    doc = controls_doc()
    firm = doc["firms"][0]
    firm.pop("limits")
    firm["desks"][0]["limits"] = {}
    for account in firm["desks"][0]["accounts"]:
        account.pop("limits", None)
    doc["tiers"]["fut"] = {
        "price_collar_bps": 100,
        "multiplier": "50",
        "multipliers": {"NQ": "20"},
        "symbols": ["ES", "NQ"],
    }
    doc["tiers"]["odd"] = {"price_collar_bps": 10000, "multiplier": "0.5", "symbols": ["MINI"]}
    doc["tiers"]["huge"] = {"price_collar_bps": 10000, "multiplier": "1000", "symbols": ["BIG"]}
    return doc


def load(lg: Ledger, doc: dict[str, Any] | None = None) -> None:
    lg.load_policy(parse_policy(doc or futures_doc(), source="futures"), by="test")
    lg.prices.set(PRICES, by="feed")


def fut(order_id: str, symbol: str = "ES", qty: str = "2", price: str = "5000.25", **kw: Any):
    return Order(order_id, "T1", "S1", "A1", symbol, kw.pop("side", "buy"), qty, price, **kw)


def test_notional_is_qty_times_price_times_the_multiplier(lg):
    load(lg)
    # 2 x 5000.25 x 50 = 500025.00
    assert accepted(lg, fut("o1")).notional == 50_002_500
    # NQ's own multiplier wins over the tier's: 1 x 18000 x 20.
    assert accepted(lg, fut("o2", "NQ", "1", "18000")).notional == 36_000_000
    # A symbol of a tier without one is unchanged.
    assert accepted(lg, fut("o3", "XYZ", "3", "100.01")).notional == 30_003


def test_rounding_is_up_to_the_minor_unit(lg):
    load(lg)
    # 1 x 0.01 x 0.5 = 0.005 -> 0.01; 2 x 0.01 x 0.5 = 0.01 exactly; 3 x ... = 0.015 -> 0.02.
    assert [accepted(lg, fut(f"m{q}", "MINI", str(q), "0.01")).notional for q in (1, 2, 3)] == [
        1,
        1,
        2,
    ]


def test_fills_and_replaces_use_the_orders_multiplier(lg):
    load(lg)
    accepted(lg, fut("o1", qty="4", price="5000"))
    f = lg.fill("o1", "f1", "1", "5001")
    assert f.ok
    # Filled 1 x 5001 x 50; the 3 left stay reserved at 5000 x 50.
    assert (f.reserved, f.fill_notional) == (75_000_000, 25_005_000)
    d = lg.replace("o1", "5", "5010")
    assert (d.accepted, d.notional) == (True, 4 * 5010 * 50 * 100)
    assert lg.check().ok


def test_a_product_beyond_the_exact_range_is_refused_and_changes_nothing(lg):
    load(lg)
    before = exposure(lg)
    # qty x price is exact, times 1000 it is not: 10^13 x 1 x 1000 = 10^16 > 2^53 - 1.
    d = lg.reserve(fut("o1", "BIG", str(10**13), "1"))
    assert (d.reason, d.message) == (
        Reason.INVALID_ORDER,
        "qty * price * multiplier would pass 2^53 - 1 and lose exactness; nothing changed",
    )
    # The product is exact, the notional in cents is not: 10^11 x 1000 x 100 = 10^16.
    d = lg.reserve(fut("o2", "BIG", str(10**11), "1"))
    assert (d.reason, d.message) == (
        Reason.INVALID_ORDER,
        "notional would pass 2^53 - 1 and lose exactness; nothing changed",
    )
    assert exposure(lg) == before
    # Refused, not remembered: the same id is decided afresh.
    assert lg.reserve(fut("o2", "BIG", "9", "1")).accepted
    assert lg.check().ok


def test_the_largest_exact_notional_with_a_multiplier_passes(lg):
    load(lg)
    # 90071992547 x 1000 x 100 = 9007199254700000 <= 2^53 - 1.
    assert accepted(lg, fut("o1", "BIG", "90071992547", "1")).notional == 9_007_199_254_700_000


def test_a_replace_beyond_the_exact_range_is_refused(lg):
    load(lg)
    accepted(lg, fut("o1", "BIG", "9", "1"))
    before = exposure(lg)
    d = lg.replace("o1", str(10**13), "1")
    assert d.reason is Reason.INVALID_ORDER and "multiplier" in d.message
    assert exposure(lg) == before


def test_caps_compare_the_multiplied_notional(lg):
    doc = futures_doc()
    doc["tiers"]["fut"]["max_order_notional"] = "500000"
    load(lg, doc)
    # 2 x 5000 x 50 = 500000.00 passes; 2 x 5000.01 x 50 does not.
    accepted(lg, fut("o1", price="5000"))
    d = refused(lg, fut("o2", price="5000.01"), Reason.MAX_ORDER_NOTIONAL, "tier:fut")
    assert (d.limit, d.requested) == (50_000_000, 50_000_100)


def test_an_order_reconciled_into_the_ledger_takes_the_symbols_multiplier(lg):
    load(lg)
    record = {"order_id": "V1", "account": "A1", "trader": "T1", "strategy": "S1"}
    record |= {"symbol": "NQ", "side": "buy", "qty": "3", "price": "18000", "status": "new"}
    fill = {"order_id": "V1", "fill_id": "VF1", "qty": "1", "price": "18001"}
    lg.reconcile([record, fill], by="ops-anna", reason="drop copy", apply=True)
    order = lg.redis.hgetall(lg.keys.order("F1", "V1"))
    # Open 2 x 18000 x 20, filled 1 x 18001 x 20.
    assert (int(order[b"res"]), int(order[b"fn"])) == (72_000_000, 36_002_000)
    assert lg.check().ok
    f = lg.fill("V1", "VF2", "1", "18000")
    assert (f.fill_notional, f.reserved) == (36_000_000, 36_000_000)
