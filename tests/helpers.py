"""Shared test helpers: a tight policy where every limit is easy to hit."""

from __future__ import annotations

import copy
from typing import Any

from ledger import Ledger, Order, parse_policy
from ledger.views import Aggregates, aggregates

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
