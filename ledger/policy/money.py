"""Exact money: decimal strings in, integers out, nothing that could round silently.

Quantities are whole units (shares, contracts, lots). Prices are decimals kept
as an integer numerator and a power-of-ten scale (``187.25`` is ``(18725, 2)``).
Notional is ``ceil(qty * price)`` in minor units of the policy currency:
rounding up is the conservative direction for a budget.

Redis runs Lua numbers as IEEE doubles, exact up to 2**53. Every value that
reaches a script is bounded by :data:`MAX_EXACT`, and so is ``qty * price``
numerator, which is the largest intermediate a script ever forms.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from ledger.errors import InvalidInput

__all__ = [
    "MAX_EXACT",
    "parse_signed_money",
    "Price",
    "parse_qty",
    "parse_price",
    "parse_money",
    "notional_minor",
    "parse_multiplier",
    "MAX_MULTIPLIER_SCALE",
    "format_minor",
]

#: Largest integer a Lua number (an IEEE double) holds exactly: 2**53 - 1.
MAX_EXACT: Final = 2**53 - 1
#: Longest decimal accepted; keeps parsing cheap and rejects absurd input early.
_MAX_DIGITS: Final = 30
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")


class Price(tuple[int, int]):
    """A positive decimal price as ``(numerator, scale)``: value = numerator / 10**scale."""

    __slots__ = ()

    def __new__(cls, numerator: int, scale: int) -> Price:
        return super().__new__(cls, (numerator, scale))

    @property
    def numerator(self) -> int:
        return self[0]

    @property
    def scale(self) -> int:
        return self[1]

    def __str__(self) -> str:
        digits = str(self.numerator).rjust(self.scale + 1, "0")
        if self.scale == 0:
            return digits
        return f"{digits[: -self.scale]}.{digits[-self.scale :]}"

    def __repr__(self) -> str:
        return f"Price('{self}')"


def _show(text: str) -> str:
    """``repr`` of an input for a message, cut short: messages must stay small whatever comes in."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def _text(value: object, field: str, pattern: re.Pattern[str], what: str) -> str:
    # Floats are refused outright: 0.1 is not 1/10, and a budget must not drift.
    if isinstance(value, bool | float):
        raise InvalidInput(field, f"must be {what} given as a string or integer, not {value!r}")
    # Sizes are bounded before any conversion: a huge int or a Decimal such as
    # 1E+999999999 would otherwise be expanded digit by digit.
    too_long = f"has more than {_MAX_DIGITS} digits"
    if isinstance(value, int):
        if not -(10**_MAX_DIGITS) < value < 10**_MAX_DIGITS:
            raise InvalidInput(field, too_long)
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInput(field, f"must be finite, not {value}")
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        if exponent < -_MAX_DIGITS or value.adjusted() >= _MAX_DIGITS:
            raise InvalidInput(field, too_long)
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    elif value is None:
        raise InvalidInput(field, f"must be {what}, got nothing")
    else:
        raise InvalidInput(field, f"must be {what}, not {type(value).__name__}")
    if text.startswith("-"):
        raise InvalidInput(field, f"must not be negative, got {_show(text)}")
    if len(text) > _MAX_DIGITS:
        raise InvalidInput(field, f"is longer than {_MAX_DIGITS} characters")
    if not pattern.fullmatch(text):
        example = "100" if pattern is _INTEGER else "187.25"
        raise InvalidInput(field, f"must be {what} such as {example}, got {_show(text)}")
    return text


def parse_qty(value: object, field: str = "qty") -> int:
    """A positive whole quantity, at most :data:`MAX_EXACT`."""
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value.adjusted() < _MAX_DIGITS
        and value == value.to_integral_value()
    ):
        value = int(value)
    qty = int(_text(value, field, _INTEGER, "a whole number"))
    if qty <= 0:
        raise InvalidInput(field, "must be greater than zero")
    if qty > MAX_EXACT:
        raise InvalidInput(field, f"must be at most {MAX_EXACT}")
    return qty


def parse_price(value: object, field: str = "price") -> Price:
    """A positive decimal price; trailing zeros are dropped so equal prices compare equal."""
    text = _text(value, field, _DECIMAL, "a decimal number")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    numerator = int(whole + frac)
    if numerator <= 0:
        raise InvalidInput(field, "must be greater than zero")
    if numerator > MAX_EXACT:
        raise InvalidInput(field, "has too many significant digits to stay exact")
    return Price(numerator, len(frac))


#: Decimal places a contract multiplier may have (the scripts add them to the price's).
MAX_MULTIPLIER_SCALE: Final = 8


def parse_multiplier(value: object, field: str) -> Price:
    """A positive exact contract multiplier (``"50"``, ``"0.1"``) as a :class:`Price`."""
    multiplier = parse_price(value, field)
    if multiplier.scale > MAX_MULTIPLIER_SCALE:
        raise InvalidInput(field, f"has more than {MAX_MULTIPLIER_SCALE} decimal places")
    return multiplier


def parse_money(value: object, minor_units: int, field: str) -> int:
    """A non-negative amount in major units (``"1000000.50"``) as integer minor units."""
    text = _text(value, field, _DECIMAL, "an amount")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) > minor_units:
        raise InvalidInput(field, f"has more than {minor_units} decimal places")
    minor = int(whole + frac.ljust(minor_units, "0"))
    if minor > MAX_EXACT:
        raise InvalidInput(field, f"exceeds the largest exact amount ({MAX_EXACT} minor units)")
    return minor


def parse_signed_money(value: object, minor_units: int, field: str) -> int:
    """An amount that may be negative (a loss), e.g. ``"-1250.50"``, as integer minor units."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.startswith("-"):
        return -parse_money(value[1:], minor_units, field)
    return parse_money(value, minor_units, field)


def notional_minor(qty: int, price: Price, minor_units: int, field: str = "qty") -> int:
    """``ceil(qty * price)`` in minor units, refusing anything a script could not keep exact.

    The same arithmetic runs in ``lua/includes/money.lua``; the property test
    checks both agree.
    """
    product = qty * price.numerator
    if product > MAX_EXACT:
        raise InvalidInput(field, "qty * price is too large to stay exact")
    if price.scale <= minor_units:
        notional = product * 10 ** (minor_units - price.scale)
    else:
        notional = -(-product // 10 ** (price.scale - minor_units))
    if notional > MAX_EXACT:
        raise InvalidInput(field, "notional is too large to stay exact")
    return int(notional)


def format_minor(minor: int, minor_units: int) -> str:
    """Integer minor units back to a decimal string in major units (``12345, 2 -> "123.45"``)."""
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(minor_units + 1, "0")
    if minor_units == 0:
        return sign + digits
    return f"{sign}{digits[:-minor_units]}.{digits[-minor_units:]}"
