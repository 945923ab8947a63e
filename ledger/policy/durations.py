"""Durations written as text in policies and on the command line: ``30s``, ``30m``, ``8h``."""

from __future__ import annotations

import re
from typing import Final

from ledger.errors import InvalidInput

__all__ = ["parse_duration_ms"]

_UNITS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION: Final = re.compile(r"([0-9]{1,9})(ms|s|m|h|d)")


def parse_duration_ms(value: object, field: str) -> int:
    """Whole milliseconds of a duration such as ``30m``; a bare number is refused
    because its unit would be a guess."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match and int(match.group(1)) > 0:
            return int(match.group(1)) * _UNITS[match.group(2)]
    raise InvalidInput(
        field, f"must be a positive duration such as 250ms, 30s, 30m, 8h or 1d, got {value!r}"
    )
