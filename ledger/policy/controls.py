"""The firm-wide parts of a policy: symbol tiers and groups, reference prices,
the trading day and override bounds, plus the structured limits
(cancel-to-new ratio, fill throttle) that nodes may carry.

Parsed by the functions here, which read fields through
:class:`ledger.policy.fields.Fields`, so every problem is reported with its file and field
like the rest of the policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import InvalidInput
from ledger.policy.durations import parse_duration_ms
from ledger.policy.fields import Fields
from ledger.policy.lifecycle import Lifecycle, parse_lifecycle
from ledger.policy.money import Price, parse_multiplier

__all__ = [
    "SYMBOL",
    "Tier",
    "TradingDay",
    "ReferencePrices",
    "CancelToNew",
    "FillThrottle",
    "Controls",
    "DEFAULT_MAX_OVERRIDE_MS",
]

#: Symbols: what an order may name and a tier may list.
SYMBOL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}")
DEFAULT_MAX_OVERRIDE_MS: Final = 8 * 3_600_000
_HHMM: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_HUNDREDTHS: Final = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")
_DAY_MS: Final = 86_400_000


@dataclass(frozen=True)
class Tier:
    """Symbols that share a price collar and per-order caps."""

    name: str
    price_collar_bps: int
    symbols: frozenset[str]
    max_order_qty: int | None = None
    max_order_notional: int | None = None
    #: Contract multiplier of the tier's symbols: notional = qty x price x multiplier.
    multiplier: Price | None = None
    #: Per-symbol multipliers that override the tier's.
    multipliers: Mapping[str, Price] = field(default_factory=dict)

    def multiplier_of(self, symbol: str) -> Price | None:
        """The symbol's multiplier; None means 1."""
        m = self.multipliers.get(symbol, self.multiplier)
        return None if m == (1, 0) else m


@dataclass(frozen=True)
class TradingDay:
    """When day counters (the daily loss) start afresh: ``rolls_at`` local time in ``zone``."""

    rolls_at: str = "00:00"
    zone: str = "UTC"

    @property
    def roll_ms(self) -> int:
        hours, minutes = self.rolls_at.split(":")
        return (int(hours) * 60 + int(minutes)) * 60_000

    def segments(self, around_ms: int, years: int = 3) -> list[int]:
        """``[start_ms, utc_offset_ms, ...]``: the zone's UTC offset from each start on,
        from a day before ``around_ms`` for ``years`` years (a policy load renews them)."""
        zone = ZoneInfo(self.zone)
        start = datetime.fromtimestamp(around_ms / 1000, UTC) - timedelta(days=1)
        end = start + timedelta(days=366 * years)

        def offset(t: datetime) -> int:
            delta = t.astimezone(zone).utcoffset() or timedelta(0)
            return int(delta.total_seconds() * 1000)

        out = [int(start.timestamp() * 1000), offset(start)]
        t = start
        while t < end:
            nxt = t + timedelta(days=1)
            if offset(nxt) != offset(t):
                lo, hi = t, nxt  # the change lies in (lo, hi]: narrow it to the second
                while hi - lo > timedelta(seconds=1):
                    mid = lo + (hi - lo) / 2
                    lo, hi = (mid, hi) if offset(mid) == offset(lo) else (lo, mid)
                out += [int(hi.timestamp() * 1000), offset(hi)]
            t = nxt
        return out

    def day_of(self, now_ms: int) -> int:
        """The trading day number of an instant; mirrors day_of() in lua/includes/day.lua."""
        seg = self.segments(now_ms, years=1)
        off = seg[1]
        for i in range(0, len(seg), 2):
            if seg[i] <= now_ms:
                off = seg[i + 1]
        return (now_ms + off - self.roll_ms) // _DAY_MS


@dataclass(frozen=True)
class ReferencePrices:
    max_age_ms: int
    #: A new reference price further than this from the last one halts the symbol.
    max_jump_bps: int


@dataclass(frozen=True)
class CancelToNew:
    """New orders are refused while cancels exceed ``max_ratio`` x new orders in the window
    (once at least ``min_messages`` of both were counted)."""

    max_ratio_hundredths: int
    window_s: int
    min_messages: int = 1


@dataclass(frozen=True)
class FillThrottle:
    """More than ``trigger_count`` fills in ``window_s`` disables the strategy."""

    trigger_count: int
    window_s: int


@dataclass(frozen=True)
class Controls:
    """The firm-wide settings of a policy."""

    tiers: Mapping[str, Tier] = field(default_factory=dict)
    symbol_groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    reference_prices: ReferencePrices | None = None
    trading_day: TradingDay = TradingDay()
    max_override_ms: int = DEFAULT_MAX_OVERRIDE_MS
    #: ``audit.require_archive``: decisions fail closed rather than outrun the archiver.
    require_archive: bool = False
    #: ``retention`` and ``time_in_force``: how long closed orders are kept, the IOC grace.
    lifecycle: Lifecycle = Lifecycle()

    def tier_of(self, symbol: str) -> Tier | None:
        for tier in self.tiers.values():
            if symbol in tier.symbols:
                return tier
        return None


TOP_KEYS: Final = (
    "trading_day",
    "reference_prices",
    "overrides",
    "symbol_groups",
    "tiers",
    "audit",
    "retention",
    "time_in_force",
)


def parse_controls(p: Fields, top: Mapping[str, Any]) -> Controls:
    groups = _groups(p, top.get("symbol_groups"))
    tiers = _tiers(p, top.get("tiers"))
    prices = None
    if "reference_prices" in top:
        prices = _reference_prices(p, top["reference_prices"])
    elif tiers:
        # A collar without a freshness rule would trust any old price.
        p.fail("reference_prices", "is required when tiers are set (max_age_ms, max_jump_pct)")
    day = TradingDay()
    if "trading_day" in top:
        day = _trading_day(p, top["trading_day"])
    max_override = DEFAULT_MAX_OVERRIDE_MS
    if "overrides" in top:
        spec = p.mapping(top["overrides"], "overrides", ("max_duration",))
        if spec is not None and "max_duration" in spec:
            max_override = _duration(p, spec["max_duration"], "overrides.max_duration")
    return Controls(
        tiers,
        groups,
        prices,
        day,
        max_override,
        _require_archive(p, top),
        parse_lifecycle(p, top),
    )


def _require_archive(p: Fields, top: Mapping[str, Any]) -> bool:
    if "audit" not in top:
        return False
    spec = p.mapping(top["audit"], "audit", ("require_archive",))
    value = spec.get("require_archive", False) if spec is not None else False
    if not isinstance(value, bool):
        # "yes"/1 would read as true to some people and false to others.
        p.fail("audit.require_archive", f"must be true or false, got {value!r}")
        return False
    return value


def _duration(p: Fields, value: object, where: str) -> int:
    try:
        return parse_duration_ms(value, where)
    except InvalidInput as exc:
        p.fail(where, exc.message)
        return 1


def _symbols(p: Fields, value: object, where: str) -> list[str]:
    items = p.sequence(value, where)
    if not items:
        p.fail(where, "must list at least one symbol")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str) and SYMBOL.fullmatch(item):
            out.append(item)
        else:
            p.fail(
                f"{where}[{i}]", f"must be a symbol of 1-32 letters, digits and ._:/-, got {item!r}"
            )
    return out


def _groups(p: Fields, value: object) -> dict[str, frozenset[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.fail("symbol_groups", "must be a mapping of group name to a list of symbols")
        return {}
    out = {}
    for name, symbols in value.items():
        if p.ident(name, f"symbol_groups.{name}") is not None:
            out[name] = frozenset(_symbols(p, symbols, f"symbol_groups.{name}"))
    return out


def _tiers(p: Fields, value: object) -> dict[str, Tier]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        p.fail("tiers", "must be a mapping of tier name to its settings")
        return {}
    out: dict[str, Tier] = {}
    owner: dict[str, str] = {}
    for name, raw in value.items():
        where = f"tiers.{name}"
        spec = p.mapping(
            raw,
            where,
            (
                "price_collar_bps",
                "max_order_qty",
                "max_order_notional",
                "multiplier",
                "multipliers",
                "symbols",
            ),
        )
        if spec is None or p.ident(name, where) is None:
            continue
        if "price_collar_bps" not in spec:
            p.fail(where, "price_collar_bps is required")
            continue
        collar = p.count(spec["price_collar_bps"], f"{where}.price_collar_bps", 1)
        qty = (
            p.count(spec["max_order_qty"], f"{where}.max_order_qty", 1)
            if "max_order_qty" in spec
            else None
        )
        notional = None
        if "max_order_notional" in spec:
            notional = p.money(spec["max_order_notional"], f"{where}.max_order_notional")
        symbols = _symbols(p, spec.get("symbols"), f"{where}.symbols")
        for s in symbols:
            if s in owner:
                p.fail(f"{where}.symbols", f"symbol {s!r} is already in tier {owner[s]!r}")
            owner[s] = name
        multiplier = (
            _multiplier(p, spec["multiplier"], f"{where}.multiplier")
            if ("multiplier" in spec)
            else None
        )
        multipliers = _multipliers(p, spec.get("multipliers"), f"{where}.multipliers", symbols)
        if collar is not None:
            out[name] = Tier(
                name, collar, frozenset(symbols), qty, notional, multiplier, multipliers
            )
    return out


def _multiplier(p: Fields, value: object, where: str) -> Price | None:
    try:
        return parse_multiplier(value, where)
    except InvalidInput as exc:
        p.fail(where, exc.message)
        return None


def _multipliers(p: Fields, value: object, where: str, symbols: list[str]) -> dict[str, Price]:
    """``{SYMBOL: "50"}``: each symbol one of the tier's own."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        p.fail(where, 'must be a mapping of symbol to its multiplier, such as {ES: "50"}')
        return {}
    out: dict[str, Price] = {}
    for symbol, raw in value.items():
        if symbol not in symbols:
            p.fail(where, f"symbol {symbol!r} is not in this tier's symbols")
            continue
        m = _multiplier(p, raw, f"{where}.{symbol}")
        if m is not None:
            out[symbol] = m
    return out


def _reference_prices(p: Fields, value: object) -> ReferencePrices | None:
    spec = p.mapping(value, "reference_prices", ("max_age_ms", "max_jump_pct"))
    if spec is None:
        return None
    for key in ("max_age_ms", "max_jump_pct"):
        if key not in spec:
            p.fail("reference_prices", f"{key} is required")
    if "max_age_ms" not in spec or "max_jump_pct" not in spec:
        return None
    age = p.count(spec["max_age_ms"], "reference_prices.max_age_ms", 1)
    jump = hundredths(p, spec["max_jump_pct"], "reference_prices.max_jump_pct")
    if age is None or jump is None:
        return None
    return ReferencePrices(age, jump)


def hundredths(p: Fields, value: object, where: str) -> int | None:
    """A positive decimal with at most two places (``"12.5"``) as hundredths (1250)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _HUNDREDTHS.fullmatch(text):
        hint = " (write it as a quoted decimal string)" if isinstance(value, float) else ""
        p.fail(
            where, f"must be a positive number with at most 2 decimal places{hint}, got {value!r}"
        )
        return None
    whole, _, frac = text.partition(".")
    out = int(whole) * 100 + int(frac.ljust(2, "0"))
    if out <= 0:
        p.fail(where, f"must be above 0, got {value!r}")
        return None
    return out


def _trading_day(p: Fields, value: object) -> TradingDay:
    spec = p.mapping(value, "trading_day", ("rolls_at", "zone"))
    if spec is None:
        return TradingDay()
    rolls_at = spec.get("rolls_at", "00:00")
    zone = spec.get("zone", "UTC")
    if not isinstance(rolls_at, str) or not _HHMM.fullmatch(rolls_at):
        p.fail("trading_day.rolls_at", f"must be a quoted 24-hour time HH:MM, got {rolls_at!r}")
        rolls_at = "00:00"
    try:
        if not isinstance(zone, str):
            raise ZoneInfoNotFoundError(zone)
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        p.fail(
            "trading_day.zone", f"must be an IANA time zone such as America/New_York, got {zone!r}"
        )
        zone = "UTC"
    return TradingDay(rolls_at, zone)


def cancel_to_new(p: Fields, value: object, where: str) -> CancelToNew | None:
    spec = p.mapping(value, where, ("max_ratio", "window_s", "min_messages"))
    if spec is None:
        return None
    missing = [k for k in ("max_ratio", "window_s") if k not in spec]
    for key in missing:
        p.fail(where, f"{key} is required")
    if missing:
        return None
    ratio = hundredths(p, spec["max_ratio"], f"{where}.max_ratio")
    window = p.count(spec["window_s"], f"{where}.window_s", 1)
    if window is not None and window > 3600:
        p.fail(f"{where}.window_s", f"must be at most 3600, got {window}")
        window = None
    minimum = p.count(spec.get("min_messages", 1), f"{where}.min_messages", 1)
    if ratio is None or window is None or minimum is None:
        return None
    return CancelToNew(ratio, window, minimum)


def fill_throttle(p: Fields, value: object, where: str) -> FillThrottle | None:
    spec = p.mapping(value, where, ("trigger_count", "window_s"))
    if spec is None:
        return None
    missing = [k for k in ("trigger_count", "window_s") if k not in spec]
    for key in missing:
        p.fail(where, f"{key} is required")
    if missing:
        return None
    count = p.count(spec["trigger_count"], f"{where}.trigger_count", 1)
    window = p.count(spec["window_s"], f"{where}.window_s", 1)
    if window is not None and window > 3600:
        p.fail(f"{where}.window_s", f"must be at most 3600, got {window}")
        window = None
    if count is None or window is None:
        return None
    return FillThrottle(count, window)
