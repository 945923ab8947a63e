"""Time in force (FIX tag 59) and retention: the values, their parsing and the policy settings.

The scripts apply them (lua/includes/expiry.lua); this module holds what a
caller and a policy may write:

* ``time_in_force``: ``DAY`` (the default: expires at the firm's next
  trading-day roll), ``GTC`` (never expires), ``GTD`` (expires at
  ``expire_time``, FIX tag 126), ``IOC`` / ``FOK`` (released by the ledger at
  the first fill or release, or after ``time_in_force.ioc_grace`` if no
  execution report arrives).
* ``expire_time``: an ISO 8601 timestamp in UTC (``2026-11-30T21:00:00Z``,
  milliseconds allowed) or, in the library, an aware :class:`datetime`.
* Policy ``retention.closed_orders``: how long a closed order (filled,
  released, expired) is kept; also the idempotency window. ``never`` keeps
  closed orders for ever.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from ledger.errors import InvalidInput
from ledger.policy.durations import parse_duration_ms

if TYPE_CHECKING:
    from ledger.policy.fields import Fields

__all__ = [
    "TIME_IN_FORCE",
    "DEFAULT_TIF",
    "DEFAULT_RETENTION_MS",
    "DEFAULT_IOC_GRACE_MS",
    "EXPIRE_PER_DECISION",
    "Lifecycle",
    "check_tif",
    "expire_ms",
    "format_ms",
    "parse_lifecycle",
]

#: FIX tag 59 values the ledger takes.
TIME_IN_FORCE: Final = ("DAY", "GTC", "GTD", "IOC", "FOK")
DEFAULT_TIF: Final = "DAY"
#: Three days: a Friday's closed orders are still there for Monday's reconciliation.
DEFAULT_RETENTION_MS: Final = 3 * 86_400_000
DEFAULT_IOC_GRACE_MS: Final = 5_000
#: Due orders one decision retires at most (EXPIRE_PER_CALL in lua/includes/expiry.lua).
EXPIRE_PER_DECISION: Final = 5
#: The policy hash field of the settings (read by lua/includes/expiry.lua).
LIFE_FIELD: Final = "meta|life"

_ISO_UTC: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(?:Z|\+00:00|\+0000)"
)


def check_tif(tif: object, expire_time: object, *, replace: bool = False) -> str:
    """The time in force, checked with its expire time; :class:`InvalidInput` naming the field."""
    allowed = ("DAY", "GTC", "GTD") if replace else TIME_IN_FORCE
    if tif not in allowed:
        what = "a replace takes " if replace else "must be "
        raise InvalidInput(
            "time_in_force", f"{what}{', '.join(allowed[:-1])} or {allowed[-1]}, got {tif!r}"
        )
    assert isinstance(tif, str)
    if tif == "GTD" and expire_time is None:
        raise InvalidInput("expire_time", "is required with time_in_force GTD")
    if tif != "GTD" and expire_time is not None:
        raise InvalidInput("expire_time", f"is only for time_in_force GTD, not {tif}")
    return tif


def expire_ms(value: object) -> int:
    """ms since the epoch of an ``expire_time``: an ISO 8601 UTC string or an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput("expire_time", "must be an aware datetime (with tzinfo), in UTC")
        delta = value - datetime(1970, 1, 1, tzinfo=UTC)
        return delta // timedelta(milliseconds=1)
    if isinstance(value, str):
        match = _ISO_UTC.fullmatch(value.strip())
        if match:
            y, mo, d, h, mi, s, frac = match.groups()
            try:
                at = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
            except ValueError as exc:
                raise InvalidInput("expire_time", f"is not a real date and time: {exc}") from exc
            millis = int((frac or "0").ljust(3, "0"))
            return int(at.timestamp()) * 1000 + millis
    raise InvalidInput(
        "expire_time",
        f"must be an ISO 8601 time in UTC such as 2026-11-30T21:00:00Z, got {value!r}",
    )


def format_ms(ms: int) -> str:
    """An ms timestamp as ISO 8601 UTC with milliseconds (``...T21:00:00.000Z``)."""
    at = datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True)
class Lifecycle:
    """The policy's ``retention`` and ``time_in_force`` settings."""

    #: ``retention.closed_orders`` in ms; None: closed orders are kept for ever (``never``).
    closed_orders_ms: int | None = DEFAULT_RETENTION_MS
    #: ``time_in_force.ioc_grace``: an IOC / FOK order with no execution report by then expires.
    ioc_grace_ms: int = DEFAULT_IOC_GRACE_MS

    def packed(self) -> dict[str, int]:
        """The ``meta|life`` record the scripts read (rc 0: kept for ever)."""
        return {"rc": self.closed_orders_ms or 0, "g": self.ioc_grace_ms}


def parse_lifecycle(p: Fields, top: Mapping[str, Any]) -> Lifecycle:
    retention, grace = DEFAULT_RETENTION_MS, DEFAULT_IOC_GRACE_MS
    kept: int | None = retention
    if "retention" in top:
        spec = p.mapping(top["retention"], "retention", ("closed_orders",))
        if spec is not None and "closed_orders" in spec:
            value = spec["closed_orders"]
            if value == "never":
                kept = None
            else:
                try:
                    kept = parse_duration_ms(value, "retention.closed_orders")
                except InvalidInput as exc:
                    p.fail("retention.closed_orders", f"{exc.message} (or never)")
    if "time_in_force" in top:
        spec = p.mapping(top["time_in_force"], "time_in_force", ("ioc_grace",))
        if spec is not None and "ioc_grace" in spec:
            try:
                grace = parse_duration_ms(spec["ioc_grace"], "time_in_force.ioc_grace")
            except InvalidInput as exc:
                p.fail("time_in_force.ioc_grace", exc.message)
    return Lifecycle(kept, grace)
