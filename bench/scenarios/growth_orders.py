"""Scenario 6a: cost per reserve and Redis memory as open orders grow.

The all-controls firm is filled with open orders (pipelined reserves, 500
per round trip, from three processes) up to each step; at each step the
five-level floor and ``reserve`` are measured side by side, with the µs of
each command the script issues, and memory is read from INFO. Bytes per open
order are the growth of ``used_memory`` over the empty ledger, divided by the
open orders, with a breakdown by key: the order hash (mean of sampled
orders), the open-order index and the audit stream (one entry per decision),
each from MEMORY USAGE.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from bench.harness import each, inner_medians, ratio_of, server_cost, summarize
from bench.scenarios import Context, row
from bench.workers import fill
from bench.workload import FirmShape, orders

TITLE = "Growth: open orders"

FULL = FirmShape("FULL", controls="full", traders=64, accounts=8)
PREFIX = "grow"
#: Processes filling at once: enough to keep the single-threaded server busy.
FILLERS = 3


def _memory(ctx: Context) -> int:
    return int(ctx.client.info("memory")["used_memory"])


def breakdown(ctx: Context, lg: Any, open_orders: int, ids: list[str]) -> dict[str, float]:
    """Bytes per open order by key kind."""
    c, k = ctx.client, lg.keys
    sample = random.Random(7).sample(ids, min(200, len(ids)))
    order_bytes = sum(int(c.memory_usage(k.order(FULL.id, i)) or 0) for i in sample) / len(sample)
    open_bytes = int(c.memory_usage(k.open_index(FULL.id)) or 0)
    audit_bytes = int(c.memory_usage(k.audit(FULL.id)) or 0)
    audit_len = int(c.xlen(k.audit(FULL.id)))
    return {
        "order_hash": order_bytes,
        "open_index": open_bytes / open_orders,
        "audit_entry": audit_bytes / max(audit_len, 1),
    }


def fill_parallel(ctx: Context, start: int, end: int) -> None:
    """Orders ``start`` .. ``end - 1``, pipelined from FILLERS worker processes."""
    chunk = 100_000
    for first in range(start, end, chunk):
        count = min(chunk, end - first)
        share = -(-count // FILLERS)
        calls = [
            {
                "url": ctx.url,
                "prefix": PREFIX,
                "shape": FULL,
                "tag": "fill",
                "start": first + w * share,
                "count": max(0, min(share, count - w * share)),
            }
            for w in range(FILLERS)
        ]
        ctx.pool.run(fill, calls)
        if end - start > chunk:
            ctx.progress.say(f"  {first + count:,} / {end:,}")


def run(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    n = mode.growth_calls
    ctx.flush()
    lg = ctx.ledger(PREFIX, FULL)
    floors = ctx.floors
    base = _memory(ctx)
    steps: dict[str, Any] = {}
    filled = 0
    ids: list[str] = []
    reserve_by_step: list[list[float]] = []
    five_by_step: list[list[float]] = []
    for target in mode.open_steps:
        todo = target - filled
        if todo > 0:
            ctx.progress.say(f"filling to {target:,} open orders")
            fill_parallel(ctx, filled, target)
            ids += [f"fill-{i}" for i in range(filled, target)]
            filled = target
        series: dict[str, list[float]] = defaultdict(list)
        inner: list[dict[str, tuple[float, float]]] = []
        for rep in range(mode.growth_reps):
            batch = list(orders(FULL, n, f"s{target}r{rep}"))
            series["five"].append(floors.server_us("five", n))
            cost, parts = server_cost(ctx.client, each(lg.reserve, batch))
            series["reserve"].append(cost)
            inner.append(parts)
        open_now = filled + mode.growth_reps * n
        mem = _memory(ctx)
        steps[str(target)] = {
            "open_orders": open_now,
            "reserve_us": summarize(series["reserve"], "µs"),
            "five_level_us": summarize(series["five"], "µs"),
            "reserve_vs_five": ratio_of(series["reserve"], series["five"]),
            "used_memory_bytes": mem,
            "bytes_per_open_order": (mem - base) / open_now,
            # Which of the commands the script issues grow (µs per reserve).
            "reserve_inner_commands_us": inner_medians(inner),
            "breakdown_bytes_per_order": breakdown(ctx, lg, open_now, ids),
        }
        reserve_by_step.append(series["reserve"])
        five_by_step.append(series["five"])
        ctx.progress.say(
            f"{target:,} open orders: reserve {steps[str(target)]['reserve_us']['median']:.1f} µs, "
            f"{steps[str(target)]['bytes_per_open_order']:.0f} B per open order"
        )
    first, last = mode.open_steps[0], mode.open_steps[-1]
    # Floor-normalised cost at the last step over the first: 1.0 is flat.
    drift = ratio_of(
        [r / f for r, f in zip(reserve_by_step[-1], five_by_step[-1], strict=True)],
        [r / f for r, f in zip(reserve_by_step[0], five_by_step[0], strict=True)],
    )
    rows = []
    for key, step in steps.items():
        b = step["breakdown_bytes_per_order"]
        rows.append(
            row(
                f"reserve at {int(key):,} open orders, Redis CPU",
                step["reserve_us"],
                vs="five-level floor",
                ratio=step["reserve_vs_five"],
                note=f"{step['bytes_per_open_order']:.0f} B per open order (order hash "
                f"{b['order_hash']:.0f}, index {b['open_index']:.0f}, audit "
                f"{b['audit_entry']:.0f})",
            )
        )
    rows.append(
        row(f"reserve cost at {last:,} / at {first:,} open orders (floor-normalised)", drift)
    )
    ctx.flush()
    return {"base_used_memory_bytes": base, "steps": steps, "last_over_first": drift, "rows": rows}
