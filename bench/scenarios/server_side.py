"""Scenario 2: the ledger's Redis CPU per operation, against the five-level floor.

Each repetition measures, one right after the other: the five-level floor,
``reserve`` with core controls, ``reserve`` with core controls and message
windows (the "full" firm), ``fill`` (a full fill, which closes the order) and
``release`` of open orders. The controls scenario adds every other control
of the order path beside these. Figures
are µs of Redis CPU per EVALSHA from ``INFO commandstats``; ratios are per
repetition. Round trips per call are counted on the client's socket writes.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import redis

from bench.harness import CountingConnection, each, ratio_of, server_cost, summarize
from bench.scenarios import Context, row
from bench.workload import FirmShape, orders
from ledger import Ledger

TITLE = "The ledger, server side"

CORE = FirmShape("CORE", controls="core")
FULL = FirmShape("FULL", controls="full")


def round_trips(ctx: Context, prefix: str, n: int) -> dict[str, float]:
    """Socket writes per reserve, fill and release, on a fresh counting client."""
    pool = redis.ConnectionPool.from_url(ctx.url, connection_class=CountingConnection)
    lg = Ledger(redis.Redis(connection_pool=pool), prefix=prefix, actor="bench")
    lg.ping()
    lg.prefetch_routes()
    batch = list(orders(FULL, n, "rt"))
    out = {}
    CountingConnection.sends = 0
    for o in batch:
        lg.reserve(o)
    out["reserve"] = CountingConnection.sends / n
    CountingConnection.sends = 0
    # A gateway knows whose order it touches: the account keeps it one round trip.
    for o in batch[: n // 2]:
        lg.fill(o.order_id, f"{o.order_id}-f", o.qty, o.price, account=o.account)
    out["fill"] = CountingConnection.sends / (n // 2)
    CountingConnection.sends = 0
    for o in batch[n // 2 :]:
        lg.release(o.order_id, "cancelled", account=o.account)
    out["release"] = CountingConnection.sends / (n - n // 2)
    pool.disconnect()
    return out


def run(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    n = mode.calls
    lg = ctx.ledger("s2", CORE, FULL)
    floors = ctx.floors
    series: dict[str, list[float]] = defaultdict(list)
    breakdown: dict[str, list[float]] = defaultdict(list)
    for rep in range(mode.reps):
        ctx.progress.say(f"repetition {rep + 1}/{mode.reps}")
        core = list(orders(CORE, n, f"c{rep}"))
        full = list(orders(FULL, n, f"f{rep}"))
        series["five"].append(floors.server_us("five", n))
        series["reserve_core"].append(server_cost(ctx.client, each(lg.reserve, core))[0])
        cost, parts = server_cost(ctx.client, each(lg.reserve, full))
        series["reserve_full"].append(cost)
        for name, (_, usec) in parts.items():
            breakdown[name].append(usec)
        half = full[: n // 2]
        series["fill"].append(
            server_cost(
                ctx.client,
                each(
                    lambda o: lg.fill(
                        o.order_id, f"{o.order_id}-f", o.qty, o.price, account=o.account
                    ),
                    half,
                ),
            )[0]
        )
        rest = full[n // 2 :]
        series["release"].append(
            server_cost(
                ctx.client,
                each(lambda o: lg.release(o.order_id, "cancelled", account=o.account), rest),
            )[0]
        )
    trips = round_trips(ctx, "s2", min(n, 200))
    five = series["five"]
    figures = {name: summarize(vals, "µs") for name, vals in series.items()}
    ratios = {name: ratio_of(vals, five) for name, vals in series.items() if name != "five"}
    labels = {
        "reserve_core": "reserve, core controls",
        "reserve_full": "reserve, core controls and message windows",
        "fill": "fill (closing the order)",
        "release": "release",
    }
    rows = [row("five-level floor, Redis CPU per call", figures["five"])]
    for name, label in labels.items():
        rows.append(
            row(
                f"{label}, Redis CPU per call",
                figures[name],
                vs="five-level floor",
                ratio=ratios[name],
                note=f"{trips[name.split('_')[0]]:g} round trip(s)"
                if name.split("_")[0] in trips
                else "",
            )
        )
    return {
        "figures": figures,
        "ratios_to_five_level": ratios,
        "round_trips_per_call": trips,
        "reserve_full_inner_commands_us": {
            name: statistics.median(vals) for name, vals in sorted(breakdown.items())
        },
        "rows": rows,
    }
