"""Reference prices and the feed-anomaly breaker.

Every firm keeps its own copy of each price in ``P:{F}:prices`` (see
docs/controls-layout.md), so a reserve reads it in the firm's slot. A price
that jumps from the last one by more than the firm's ``max_jump_pct`` halts
the symbol for that firm (lua/setPrices-3.lua) until ops resume it
(lua/resumeSymbol-2.lua); firms with different limits can disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import msgpack

from ledger.errors import InvalidInput, ReenableRefused
from ledger.facade.core import LedgerCore
from ledger.facade.inputs import text
from ledger.facade.states import audit_refused, check_reenabler
from ledger.policy.controls import SYMBOL
from ledger.policy.money import Price, parse_price

__all__ = [
    "Prices",
    "PriceStatus",
    "PriceSet",
    "Halt",
    "ReferencePrice",
    "Resume",
    "MAX_SYMBOLS",
    "check_symbol",
]

#: Symbols per call: one script call per firm holds the server for all of them.
MAX_SYMBOLS: Final = 1000


class PriceStatus(StrEnum):
    """What one price did to its symbol in one firm."""

    #: Stored; the symbol trades.
    SET = "set"
    #: Stored, and it jumped too far: the symbol is halted from now on.
    HALTED = "halted"
    #: Stored; the symbol was halted before and stays halted.
    ALREADY_HALTED = "already_halted"


@dataclass(frozen=True)
class PriceSet:
    """One symbol's new price in one firm."""

    firm: str
    symbol: str
    price: str
    status: PriceStatus
    #: Move from the previous price in bps, rounded up; None for a first price.
    jump_bps: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "firm": self.firm,
            "symbol": self.symbol,
            "price": self.price,
            "status": self.status.value,
            "jump_bps": self.jump_bps,
        }


@dataclass(frozen=True)
class Halt:
    """Who halted a symbol (the price feed's name), when, why, and the jump."""

    by: str
    why: str
    at_ms: int
    from_price: str
    to_price: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "why": self.why,
            "at_ms": self.at_ms,
            "from": self.from_price,
            "to": self.to_price,
        }


@dataclass(frozen=True)
class ReferencePrice:
    """A symbol's reference price in one firm, as a reserve would see it now."""

    firm: str
    symbol: str
    #: None when the firm has no price for a symbol that was asked for.
    price: str | None
    set_at_ms: int | None
    #: Server time now minus ``set_at_ms``.
    age_ms: int | None
    #: The firm's ``reference_prices.max_age_ms``; None when it has none.
    max_age_ms: int | None
    halt: Halt | None

    @property
    def stale(self) -> bool | None:
        """Too old (or missing) for the firm's max age; None when the firm sets no max age."""
        if self.max_age_ms is None:
            return None
        return self.age_ms is None or self.age_ms > self.max_age_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "firm": self.firm,
            "symbol": self.symbol,
            "price": self.price,
            "set_at_ms": self.set_at_ms,
            "age_ms": self.age_ms,
            "max_age_ms": self.max_age_ms,
            "stale": self.stale,
            "halted": self.halt is not None,
            "halt": self.halt.to_dict() if self.halt else None,
        }


@dataclass(frozen=True)
class Resume:
    """The answer to :meth:`Prices.resume`."""

    symbol: str
    by: str
    reason: str
    #: Firms in which the symbol was halted and now trades again.
    firms: tuple[str, ...]

    @property
    def already(self) -> bool:
        """True when no firm had the symbol halted: nothing changed, nothing audited."""
        return not self.firms

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "by": self.by,
            "reason": self.reason,
            "resumed": list(self.firms),
            "already": self.already,
        }


def check_symbol(symbol: object) -> str:
    """``symbol`` if it follows the order's symbol rule, else :class:`InvalidInput`."""
    if not isinstance(symbol, str) or not SYMBOL.fullmatch(symbol):
        shown = repr(symbol) if len(repr(symbol)) <= 40 else repr(symbol)[:40] + "..."
        raise InvalidInput("symbol", f"{shown} is not 1-32 characters of letters, digits and ._:/-")
    return symbol


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _price(record: Mapping[str, Any]) -> str:
    return str(Price(int(record["pn"]), int(record["ps"])))


def _fields(symbols: list[str]) -> list[str]:
    return [f for s in symbols for f in (s, f"h|{s}")]


def _halt(blob: bytes) -> Halt:
    rec = msgpack.unpackb(blob, raw=False)
    return Halt(rec["by"], rec["why"], int(rec["t"]), _price(rec["from"]), _price(rec["to"]))


class Prices:
    """Reference prices of every firm: ``ledger.prices.set({"AAPL": "187.25"}, by="feed")``."""

    def __init__(self, ledger: LedgerCore) -> None:
        self._lg = ledger

    def _per_firm(self, firms: list[str], call: Callable[[str, Any], Any]) -> list[Any]:
        """``call(firm, client)`` for each firm, in one round trip where possible."""
        lg = self._lg
        with lg._redis_errors():
            if lg.keys.cluster:
                # A cluster pipeline does not load scripts first: a shard that has
                # not seen one yet would answer NOSCRIPT. Direct calls reload it.
                return [call(firm, None) for firm in firms]
            pipe = lg.redis.pipeline(transaction=False)
            for firm in firms:
                call(firm, pipe)
            if not firms:
                return []
            waits = lg.durable.append(pipe)
            return lg.durable.strip(pipe.execute(), waits)

    def set(self, prices: Mapping[str, str | int | Decimal], *, by: str) -> list[PriceSet]:
        """Store ``prices`` in every firm that has a policy, one script call per firm.

        A price that jumps too far from the symbol's last one halts the
        symbol in that firm (and is stored all the same). All input is
        checked before anything is sent: bad input changes nothing.

        Returns:
            One :class:`PriceSet` per firm and symbol, firms sorted, symbols
            in the order given; empty when no firm has a policy.

        Raises:
            InvalidInput: a bad symbol or price (floats included), no prices
                or more than :data:`MAX_SYMBOLS`, or an empty ``by``.
            LedgerUnavailable: Redis failed; some firms may hold the new prices.
        """
        who = text("by", by, 200)
        if not isinstance(prices, Mapping) or not prices:
            raise InvalidInput("prices", "give at least one symbol and its price")
        if len(prices) > MAX_SYMBOLS:
            raise InvalidInput("prices", f"at most {MAX_SYMBOLS} symbols per call")
        parsed = [
            (check_symbol(symbol), parse_price(value, f"price of {symbol}"))
            for symbol, value in prices.items()
        ]
        args: list[Any] = [who, self._lg.audit_maxlen]
        for symbol, price in parsed:
            args += [symbol, price.numerator, price.scale]
        k = self._lg.keys
        firms = self._lg._known_firms()
        raws = self._per_firm(
            firms,
            lambda firm, client: self._lg.scripts.set_prices(
                [k.policy(firm), k.prices(firm), k.audit(firm)], args, client=client
            ),
        )
        out = []
        for firm, raw in zip(firms, raws, strict=True):
            for i, (symbol, price) in enumerate(parsed):
                status, jump = _s(raw[1 + 2 * i]), _s(raw[2 + 2 * i])
                out.append(
                    PriceSet(
                        firm, symbol, str(price), PriceStatus(status), int(jump) if jump else None
                    )
                )
        return out

    def resume(self, symbol: str, *, by: str, reason: str) -> Resume:
        """Lift the halt of ``symbol`` in every firm; who and why go to each firm's audit.

        Resuming a symbol that no firm has halted changes nothing and says so
        (:attr:`Resume.already`).
        """
        sym = check_symbol(symbol)
        who = text("by", by, 200)
        why = text("reason", reason)
        # A halt is set automatically by whoever fed the jumping price: that
        # identity, or any system one, may not lift it.
        firms = self._lg._known_firms()
        try:
            check_reenabler(who)
            for row in self.get([sym]):
                if row.halt is not None:
                    check_reenabler(who, row.halt.by)
        except ReenableRefused:
            record = {"op": "resume", "symbol": sym, "by": who, "why": why}
            audit_refused(self._lg, firms or [None], record)
            raise
        k, args = self._lg.keys, [sym, who, why, self._lg.audit_maxlen]
        raws = self._per_firm(
            firms,
            lambda firm, client: self._lg.scripts.resume_symbol(
                [k.prices(firm), k.audit(firm)], args, client=client
            ),
        )
        resumed = tuple(f for f, raw in zip(firms, raws, strict=True) if int(raw[1]) == 0)
        return Resume(sym, who, why, resumed)

    def get(self, symbols: Iterable[str] | None = None) -> list[ReferencePrice]:
        """Prices, their age (by server time) and halts, per firm and symbol.

        Without ``symbols``: every symbol each firm has a price for. With
        them: a row per firm and asked symbol, ``price`` None where there is none.
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        asked = None if symbols is None else list(dict.fromkeys(map(check_symbol, symbols)))
        if asked == []:
            return []
        lg, k = self._lg, self._lg.keys
        firms = lg._known_firms()
        with lg._redis_errors():
            pipe = lg.redis.pipeline(transaction=False)
            for firm in firms:
                pipe.hget(k.policy(firm), "meta|px")
                if asked is None:
                    pipe.hgetall(k.prices(firm))
                else:
                    pipe.hmget(k.prices(firm), _fields(asked))
            raws = pipe.execute() if firms else []
            # Read after the prices, so that an age is never below zero; TIME
            # has no place in a cluster pipeline.
            seconds, micros = lg.redis.time()
        now_ms = seconds * 1000 + micros // 1000
        out = []
        for i, firm in enumerate(firms):
            px, found = raws[2 * i], raws[2 * i + 1]
            max_age = msgpack.unpackb(px, raw=False).get("a") if px else None
            if asked is None:
                table = {_s(f): v for f, v in found.items()}
                names = sorted(f for f in table if not f.startswith("h|"))
            else:
                table = dict(zip(_fields(asked), found, strict=True))
                names = asked
            for symbol in names:
                blob, halt = table.get(symbol), table.get(f"h|{symbol}")
                rec = msgpack.unpackb(blob, raw=False) if blob else None
                out.append(
                    ReferencePrice(
                        firm,
                        symbol,
                        _price(rec) if rec else None,
                        int(rec["t"]) if rec else None,
                        now_ms - int(rec["t"]) if rec else None,
                        max_age,
                        _halt(halt) if halt else None,
                    )
                )
        return out
