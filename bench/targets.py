"""The issue's targets, judged from one run's results. Nothing here tunes a measurement."""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate"]

#: How much a node's window state may grow from the smallest to the largest limit and still
#: count as "not growing with the limit": its 12 integers widening to 8 bytes each.
WINDOW_WIDENING_BYTES = 96
#: "Flat within noise": the floor-normalised cost at the last step within 10% of the first.
FLAT_TOLERANCE = 0.10


def _m(stat: dict[str, Any]) -> float:
    return float(stat["median"])


def _fmt(stat: dict[str, Any] | None, digits: int = 2) -> str:
    if not stat:
        return "n/a"
    return f"{stat['median']:.{digits}f} ({stat['min']:.{digits}f}–{stat['max']:.{digits}f})"


def evaluate(scenarios: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        out.append({"target": target, "measured": measured, "met": met})

    s2 = scenarios.get("server_side", {})
    if "ratios_to_five_level" in s2:
        ratio = s2["ratios_to_five_level"]["reserve_full"]
        trips = s2["round_trips_per_call"]["reserve"]
        add(
            "Redis CPU per full reserve ≤ 2.5x the five-level floor; one round trip per decision",
            f"{_fmt(ratio)}x the floor ({_fmt(s2['figures']['reserve_full'], 1)} µs vs "
            f"{_fmt(s2['figures']['five'], 1)} µs); {trips:g} round trip(s) per reserve",
            _m(ratio) <= 2.5 and trips == 1,
        )

    s3 = scenarios.get("library", {})
    if "sequential" in s3:
        ratio = s3["sequential"]["ratios"]["p50"]
        add(
            "Sequential library p50 ≤ 1.5x a PING round trip from the same process",
            f"{_fmt(ratio)}x ({_fmt(s3['sequential']['reserve']['p50'], 0)} µs vs "
            f"{_fmt(s3['sequential']['ping']['p50'], 0)} µs)",
            _m(ratio) <= 1.5,
        )

    s4 = scenarios.get("watch_multi", {})
    if "ledger_vs_watch" in s4:
        ratio = s4["ledger_vs_watch"]
        exceeded = s4["ledger_exceeded"]["max"]
        add(
            "≥ 5x the WATCH/MULTI throughput with 8 racing processes, zero budgets exceeded",
            f"{_fmt(ratio)}x ({_fmt(s4['ledger_per_s'], 0)} vs {_fmt(s4['watch_per_s'], 0)} "
            f"decisions/s); ledger budgets exceeded: {exceeded:.0f}, WATCH/MULTI: "
            f"{s4['watch_exceeded']['max']:.0f}",
            _m(ratio) >= 5 and exceeded == 0,
        )

    s5 = scenarios.get("limiters", {})
    if "cost" in s5:
        ratio = s5["cost"]["ratios"]["ledger_vs_moving_window_server"]
        mem = s5["memory_bytes_per_node"]
        ledger = [mem["ledger"][k] for k in sorted(mem["ledger"], key=int)]
        moving = [mem["moving_window"][k] for k in sorted(mem["moving_window"], key=int)]
        bounded = ledger[-1] - ledger[0] <= WINDOW_WIDENING_BYTES
        add(
            "Message window cheaper per hit than limits' moving window at 1,000/s; "
            "memory per node not growing with the limit",
            f"{_fmt(ratio)}x the moving window's Redis CPU "
            f"({_fmt(s5['cost']['server_us']['ledger_window_in_reserve'], 1)} vs "
            f"{_fmt(s5['cost']['server_us']['moving_window'], 1)} µs); ledger "
            f"{ledger[0]}–{ledger[-1]} B per node from the smallest to the largest limit, "
            f"moving window {moving[0]:,}–{moving[-1]:,} B",
            _m(ratio) < 1 and bounded,
        )

    s6 = scenarios.get("growth_orders", {})
    if "steps" in s6:
        steps = s6["steps"]
        first, last = min(steps, key=int), max(steps, key=int)
        drift = s6["last_over_first"]
        flat = abs(_m(drift) - 1) <= FLAT_TOLERANCE
        per_order = steps[last]["bytes_per_open_order"]
        partial = "" if int(last) >= 1_000_000 else f" (this {mode} run stops at {int(last):,})"
        add(
            "Cost per reserve flat within noise from 1k to 1M open orders; memory per open "
            "order stated",
            f"{int(last):,} vs {int(first):,} open orders: {_fmt(drift)}x (floor-normalised)"
            f"{partial}; {per_order:.0f} B per open order",
            flat if int(last) >= 1_000_000 else None,
        )
    return out
