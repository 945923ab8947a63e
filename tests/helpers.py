"""Shared test helpers: a tight policy where every limit is easy to hit."""

from __future__ import annotations

import copy
from typing import Any

from ledger import Ledger, Order, Reason, parse_policy
from ledger.facade.views import Aggregates, aggregates

#: All money in major units of USD; minor_units 2.
TIGHT: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": 2,
    "firms": [
        {
            "id": "F1",
            "limits": {"max_gross_notional": "100000", "max_net_notional": "60000"},
            "desks": [
                {
                    "id": "D1",
                    "limits": {"max_gross_notional": "50000", "max_open_orders": 6},
                    "accounts": [
                        {
                            "id": "A1",
                            "limits": {"max_order_qty": 1000, "max_order_notional": "20000"},
                        },
                        {"id": "A2", "limits": {"max_order_qty": 500}},
                    ],
                },
                {"id": "D2", "accounts": [{"id": "A3"}]},
            ],
        }
    ],
    "strategies": [
        {"id": "S1", "accounts": ["A1", "A2"], "limits": {"messages": {"per_10s": 8}}},
        {"id": "S2", "accounts": ["A3"]},
    ],
    "traders": [
        {
            "id": "T1",
            "accounts": ["A1", "A2"],
            "strategies": ["S1"],
            "limits": {"max_gross_notional": "40000", "max_net_notional": "30000"},
        },
        {"id": "T2", "accounts": ["A3"], "strategies": ["S2"]},
    ],
}


def tight_policy(**changes: Any) -> Any:
    doc = copy.deepcopy(TIGHT)
    doc.update(changes)
    return parse_policy(doc, source="tight")


def order(
    order_id: str,
    qty: str = "10",
    price: str = "100",
    side: str = "buy",
    trader: str = "T1",
    strategy: str = "S1",
    account: str = "A1",
    symbol: str = "XYZ",
) -> Order:
    return Order(order_id, trader, strategy, account, symbol, side, qty, price)


def load(lg: Ledger, doc: dict[str, Any] | None = None) -> None:
    lg.load_policy(parse_policy(doc or TIGHT, source="tight"), by="test")


def agg(lg: Ledger, scope: str, firm: str = "F1") -> Aggregates:
    return aggregates(lg.redis, lg.keys, firm).get(scope, Aggregates())


# -- pre-trade controls (tests/test_controls_*.py, tests/test_basket.py) ---------------

#: Reference prices the controls tests start from; every tier symbol has one.
CONTROLS_PRICES: dict[str, str] = {"AAPL": "200", "MSFT": "400", "XYZ": "100", "ABC": "50"}


def controls_doc(*, tiers: bool = True) -> dict[str, Any]:
    """TIGHT's hierarchy with room to trade, plus the firm-wide pre-trade controls.

    The desk's open-order cap, S1's message windows and T1's budgets are left
    out so that only the control a test sets can decide. With ``tiers``:
    AAPL and MSFT in ``large`` (50 bps collar, at most 800 per order and
    15000.00 notional), XYZ and ABC in ``mid`` (100 bps collar, no caps), a
    60 s price age limit, halts beyond a 10 % jump, and the group ``tech``.
    """
    doc = copy.deepcopy(TIGHT)
    doc["firms"][0]["desks"][0]["limits"] = {"max_gross_notional": "50000"}
    doc["strategies"][0].pop("limits")
    doc["traders"][0].pop("limits")
    doc["symbol_groups"] = {"tech": ["AAPL", "MSFT"]}
    if tiers:
        doc["tiers"] = {
            "large": {
                "price_collar_bps": 50,
                "max_order_qty": 800,
                "max_order_notional": "15000",
                "symbols": ["AAPL", "MSFT"],
            },
            "mid": {"price_collar_bps": 100, "symbols": ["XYZ", "ABC"]},
        }
        doc["reference_prices"] = {"max_age_ms": 60_000, "max_jump_pct": "10"}
    return doc


def controls_node(doc: dict[str, Any], scope: str) -> dict[str, Any]:
    """The mapping of node ``kind:id`` in a policy document, with a ``limits`` mapping."""
    kind, _, node_id = scope.partition(":")
    if kind in ("strategy", "trader"):
        candidates = doc["strategies" if kind == "strategy" else "traders"]
    else:
        firms = doc["firms"]
        desks = [d for f in firms for d in f.get("desks", [])]
        candidates = {
            "firm": firms,
            "desk": desks,
            "account": [a for d in desks for a in d.get("accounts", [])],
        }[kind]
    (spec,) = [n for n in candidates if n["id"] == node_id]
    spec.setdefault("limits", {})
    return spec


def load_controls(lg: Ledger, doc: dict[str, Any], prices: dict[str, str] | None = None) -> None:
    """Load ``doc`` and, when it has tiers, set the reference prices its orders need."""
    lg.load_policy(parse_policy(doc, source="controls"), by="test")
    if "tiers" in doc:
        lg.prices.set(prices or CONTROLS_PRICES, by="feed")


def controls_order(order_id: str, venue: str | None = None, **fields: Any) -> Order:
    """:func:`order` with a venue."""
    o = order(order_id, **fields)
    return Order(
        o.order_id, o.trader, o.strategy, o.account, o.symbol, o.side, o.qty, o.price, venue
    )


def exposure(lg: Ledger, firm: str = "F1") -> dict[str, Any]:
    """Every reservation the ledger keeps for a firm: node aggregates (message rings
    included), positions per node and symbol, and the open-order index."""
    k = lg.keys
    return {
        "agg": lg.redis.hgetall(k.agg(firm)),
        "pos": lg.redis.hgetall(k.positions(firm)),
        "open": lg.redis.zrange(k.open_index(firm), 0, -1),
    }


def refused(lg: Ledger, o: Any, reason: Reason, scope: str | None) -> Any:
    """Reserve ``o``, expect the reject, and prove it reserved nothing."""
    before = exposure(lg)
    d = lg.reserve(o)
    assert (d.accepted, d.reason, d.scope) == (False, reason, scope)
    assert exposure(lg) == before
    assert lg.check().ok
    return d


def accepted(lg: Ledger, o: Any) -> Any:
    d = lg.reserve(o)
    assert (d.accepted, d.reason) == (True, Reason.OK), d
    assert lg.check().ok
    return d
