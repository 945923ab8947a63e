"""Redis CPU per ``reserve`` as controls are added, side by side on one server.

Each repetition measures, one right after the other (which goes first
rotates): EVALSHA of ``return 1`` (the floor of any script call);
``reserve`` with core controls (per-order qty and notional, open orders,
gross and net notional at five levels, no message windows); core controls
plus a per-second and a per-10-second message window at five levels (what
earlier reports called all controls); and every control the order path has
(``all`` in bench/workload.py) with a fresh reference price, a stress factor
and an override in force. Figures are µs of Redis CPU per EVALSHA from
``INFO commandstats``; ratios are per repetition.

Every measured reserve must be accepted, since an accept is the path that
does the most work: the scenario fails otherwise, so a measure of rejects
cannot pass as one of accepts. Before measuring, a few probe orders prove
that the ``all`` firm's controls are live (each is refused for its reason).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.harness import ratio_of, server_cost, summarize
from bench.scenarios import Context, row
from bench.workload import FirmShape, arm_controls, orders, refresh_prices
from ledger import Decision, Ledger, Order, Reason

TITLE = "The cost of the controls, server side"

CORE = FirmShape("CORE", controls="core")
WINDOWS = FirmShape("WIN", controls="full")
ALL = FirmShape("ALL", controls="all")


def probe(lg: Ledger) -> dict[str, str]:
    """Orders each of which one control of the ``all`` firm must refuse; what each got."""
    base = next(orders(ALL, 1, "probe", start=999_999))
    expected = {
        "duplicate order": (replace(base, order_id="probe-dup"), Reason.DUPLICATE_ORDER),
        "price outside the collar": (
            replace(base, order_id="probe-collar", price="110"),
            Reason.PRICE_COLLAR,
        ),
        "venue not entitled": (
            replace(base, order_id="probe-venue", venue="XLON"),
            Reason.NOT_ENTITLED,
        ),
        "over the tier's max qty": (
            replace(base, order_id="probe-qty", qty="50001", price="100.25"),
            Reason.MAX_ORDER_QTY,
        ),
    }
    refresh_prices(lg)
    first = lg.reserve(base)
    if not first.accepted:
        raise RuntimeError(f"probe order refused: {first.reason} at {first.scope}")
    got = {}
    for what, (order, reason) in expected.items():
        d = lg.reserve(order)
        if d.reason is not reason:
            raise RuntimeError(f"controls not live: {what} got {d.reason}, expected {reason}")
        got[what] = str(d.reason)
    lg.release(base.order_id, "cancelled")
    return got


@dataclass
class Tally:
    """What one reserve measure saw over the run."""

    accepted: int = 0
    #: µs per reserve of each command the script issued, one value per measurement.
    inner: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _reserve_measure(
    ctx: Context, lg: Ledger, shape: FirmShape, tally: Tally
) -> Callable[[], float]:
    """One measurement: ``n`` fresh orders reserved one by one; Redis CPU µs per EVALSHA."""
    n = ctx.mode.calls
    done = [0]

    def measure() -> float:
        batch: list[Order] = list(orders(shape, n, shape.id.lower(), start=done[0]))
        done[0] += n
        if shape.controls == "all":
            refresh_prices(lg)  # outside the measured window: server_cost resets the stats
        decisions: list[Decision] = []
        cost, parts = server_cost(ctx.client, lambda: decisions.extend(map(lg.reserve, batch)))
        refused = Counter(f"{d.reason} at {d.scope}" for d in decisions if not d.accepted)
        if refused:
            raise RuntimeError(
                f"{shape.id}: {sum(refused.values())} of {n} reserves refused "
                f"({dict(refused)}); this measures accepts only"
            )
        tally.accepted += n
        for cmd, (_, usec) in parts.items():
            tally.inner[cmd].append(usec)
        return cost

    return measure


def run(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    base = ctx.ledger("ctl", CORE, WINDOWS)
    full = ctx.ledger("ctl-all", ALL)
    arm_controls(full, ALL)
    probes = probe(full)
    tallies = {name: Tally() for name in ("core", "windows", "all")}
    measures: dict[str, Callable[[], float]] = {
        "floor": lambda: ctx.floors.server_us("one", mode.calls),
        "core": _reserve_measure(ctx, base, CORE, tallies["core"]),
        "windows": _reserve_measure(ctx, base, WINDOWS, tallies["windows"]),
        "all": _reserve_measure(ctx, full, ALL, tallies["all"]),
    }
    names = list(measures)
    series: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(mode.reps):
        ctx.progress.say(f"repetition {rep + 1}/{mode.reps}")
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            series[name].append(measures[name]())
    figures = {name: summarize(vals, "µs") for name, vals in series.items()}
    pairs = {
        "core_vs_floor": ("core", "floor"),
        "windows_vs_core": ("windows", "core"),
        "all_vs_core": ("all", "core"),
        "all_vs_windows": ("all", "windows"),
        "all_vs_floor": ("all", "floor"),
    }
    ratios = {key: ratio_of(series[a], series[b]) for key, (a, b) in pairs.items()}
    added = summarize((a - c for a, c in zip(series["all"], series["core"], strict=True)), "µs")
    accepted = {name: t.accepted for name, t in tallies.items()}
    all_inner = {cmd: statistics.median(vals) for cmd, vals in sorted(tallies["all"].inner.items())}
    rows = [
        row("EVALSHA `return 1` (the floor), Redis CPU per call", figures["floor"]),
        row(
            "reserve, core controls, Redis CPU per call",
            figures["core"],
            vs="EVALSHA `return 1`",
            ratio=ratios["core_vs_floor"],
            note=f"{accepted['core']} accepted, none refused",
        ),
        row(
            "reserve, core controls and message windows, Redis CPU per call",
            figures["windows"],
            vs="reserve, core controls",
            ratio=ratios["windows_vs_core"],
            note=f"{accepted['windows']} accepted, none refused",
        ),
        row(
            "reserve, all controls on, Redis CPU per call",
            figures["all"],
            vs="reserve, core controls",
            ratio=ratios["all_vs_core"],
            note=f"{accepted['all']} accepted, none refused; "
            f"{added['median']:.1f} µs above core controls",
        ),
        row(
            "reserve, all controls on, against core controls and message windows",
            figures["all"],
            vs="reserve, core controls and message windows",
            ratio=ratios["all_vs_windows"],
        ),
        row(
            "reserve, all controls on, against the floor",
            figures["all"],
            vs="EVALSHA `return 1`",
            ratio=ratios["all_vs_floor"],
        ),
    ]
    return {
        "figures": figures,
        "ratios": ratios,
        "all_minus_core_us": added,
        "accepted": accepted,
        "probes": probes,
        "all_inner_commands_us": all_inner,
        "rows": rows,
    }
