"""The order as callers give it, and its validation into exact values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from ledger.errors import InvalidInput
from ledger.keys import check_id
from ledger.money import Price, parse_price, parse_qty
from ledger.policy import _ID

__all__ = ["Order", "ValidOrder", "SIDES"]

SIDES: Final = ("buy", "sell")
_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}")


@dataclass(frozen=True)
class Order:
    """A new order. ``qty`` and ``price`` are decimal strings (or ints/Decimals); never floats."""

    order_id: str
    trader: str
    strategy: str
    account: str
    symbol: str
    side: str
    qty: str | int | Decimal
    price: str | int | Decimal

    def validate(self) -> ValidOrder:
        """Exact values, or :class:`InvalidInput` naming the first bad field."""
        check_id(self.order_id, "order_id")
        for field in ("trader", "strategy", "account"):
            value = getattr(self, field)
            if not isinstance(value, str) or not _ID.fullmatch(value):
                raise InvalidInput(field, "must be a node id of letters, digits, '.', '_' or '-'")
        if not isinstance(self.symbol, str) or not _SYMBOL.fullmatch(self.symbol):
            raise InvalidInput("symbol", "must be 1-32 characters of letters, digits and ._:/-")
        if self.side not in SIDES:
            raise InvalidInput("side", f"must be 'buy' or 'sell', got {self.side!r}")
        return ValidOrder(self, parse_qty(self.qty), parse_price(self.price))


@dataclass(frozen=True)
class ValidOrder:
    order: Order
    qty: int
    price: Price

    @property
    def fingerprint(self) -> str:
        o = self.order
        return f"{o.trader}|{o.strategy}|{o.account}|{o.symbol}|{o.side}|{self.qty}|{self.price}"
