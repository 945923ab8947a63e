"""The order as callers give it, and its validation into exact values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from ledger.errors import InvalidInput
from ledger.policy.controls import SYMBOL
from ledger.policy.lifecycle import DEFAULT_TIF, check_tif, expire_ms
from ledger.policy.model import _ID
from ledger.policy.money import Price, parse_price, parse_qty
from ledger.store.keys import check_id

__all__ = ["Order", "ValidOrder", "SIDES"]

SIDES: Final = ("buy", "sell")


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
    #: Where the order goes (a market identifier code such as XNAS); None if not named.
    venue: str | None = None
    #: FIX tag 59: DAY (default), GTC, GTD (with ``expire_time``), IOC or FOK.
    time_in_force: str = DEFAULT_TIF
    #: FIX tag 126, GTD only: an aware datetime or an ISO 8601 UTC string.
    expire_time: datetime | str | None = None
    #: FIX ExecInst E: refused (REDUCE_ONLY) unless it shrinks the position at every node.
    reduce_only: bool = False

    def validate(self) -> ValidOrder:
        """Exact values, or :class:`InvalidInput` naming the first bad field."""
        check_id(self.order_id, "order_id")
        for field in ("trader", "strategy", "account"):
            value = getattr(self, field)
            if not isinstance(value, str) or not _ID.fullmatch(value):
                raise InvalidInput(field, "must be a node id of letters, digits, '.', '_' or '-'")
        if not isinstance(self.symbol, str) or not SYMBOL.fullmatch(self.symbol):
            raise InvalidInput("symbol", "must be 1-32 characters of letters, digits and ._:/-")
        if self.venue is not None and (
            not isinstance(self.venue, str) or not _ID.fullmatch(self.venue)
        ):
            raise InvalidInput("venue", "must be a venue id of letters, digits, '.', '_' or '-'")
        if self.side not in SIDES:
            raise InvalidInput("side", f"must be 'buy' or 'sell', got {self.side!r}")
        if not isinstance(self.reduce_only, bool):
            raise InvalidInput("reduce_only", "must be true or false")
        qty, price = parse_qty(self.qty), parse_price(self.price)
        tif = check_tif(self.time_in_force, self.expire_time)
        expires = expire_ms(self.expire_time) if tif == "GTD" else None
        return ValidOrder(self, qty, price, tif, expires)


@dataclass(frozen=True)
class ValidOrder:
    order: Order
    qty: int
    price: Price
    time_in_force: str = DEFAULT_TIF
    #: GTD's expire time, ms since the epoch.
    expire_ms: int | None = None

    @property
    def fingerprint(self) -> str:
        o = self.order
        fields = f"{o.trader}|{o.strategy}|{o.account}|{o.symbol}|{o.side}|{self.qty}|{self.price}"
        fields = f"{fields}|{o.venue}" if o.venue else fields
        # DAY adds nothing: fingerprints stored before time in force still match.
        if self.time_in_force != DEFAULT_TIF:
            fields += f"|tif={self.time_in_force}"
        if self.expire_ms is not None:
            fields += f"@{self.expire_ms}"
        if o.reduce_only:
            fields += "|reduce_only"
        return fields

    @property
    def duplicate_key(self) -> str:
        """What the duplicate-order guard compares: account, symbol, side, qty, price."""
        o = self.order
        return f"{o.account}|{o.symbol}|{o.side}|{self.qty}|{self.price}"
