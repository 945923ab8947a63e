"""Scenario 6b: cost per reserve and memory as the hierarchy grows (100 -> 100k traders).

Each step starts from an empty server and loads a policy with ``T``
traders (``T/10`` accounts, each with its strategy, and ``T/100`` desks; all
controls at every node). It records the time to validate and load the
policy, the policy's memory per node, a client's cold start (first decision
of a new process: reading its account's route, then the script call), then trades once with
every trader so each node has state, and measures ``reserve`` beside the
five-level floor over traders spread across the whole tree.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from bench.harness import (
    at,
    each,
    inner_medians,
    percentiles,
    ratio_of,
    server_cost,
    summarize,
    timed_calls,
)
from bench.scenarios import Context, row
from bench.workload import FirmShape, fill_pipelined, orders, policy_doc
from ledger import Ledger, parse_policy

TITLE = "Growth: nodes"


def _memory(ctx: Context) -> int:
    return int(ctx.client.info("memory")["used_memory"])


def shape_for(traders: int) -> FirmShape:
    accounts = max(1, traders // 10)
    return FirmShape(
        f"N{traders}",
        controls="full",
        traders=traders,
        accounts=accounts,
        desks=max(1, accounts // 10),
    )


def step(ctx: Context, traders: int) -> dict[str, Any]:
    mode = ctx.mode
    n = mode.growth_calls
    shape = shape_for(traders)
    nodes = 1 + shape.desks + 2 * shape.accounts + traders
    ctx.flush()
    floors = ctx.floors
    before = _memory(ctx)
    t0 = time.perf_counter()
    policy = parse_policy(policy_doc([shape]), source="bench")
    parse_s = time.perf_counter() - t0
    prefix = f"nodes{traders}"
    lg = Ledger.from_url(ctx.url, prefix=prefix, timeout_s=120.0, actor="bench")
    t0 = time.perf_counter()
    lg.load_policy(policy, by="bench")
    load_s = time.perf_counter() - t0
    lg.ping()
    policy_bytes = _memory(ctx) - before
    # A new process's first decision: one route read, then the script call.
    cold = Ledger.from_url(ctx.url, prefix=prefix, timeout_s=120.0, actor="bench")
    cold.ping()
    first = next(orders(shape, 1, "cold"))
    t0 = time.perf_counter()
    cold.reserve(first)
    cold_ms = (time.perf_counter() - t0) * 1000
    cold.redis.close()
    ctx.progress.say(
        f"{traders:,} traders ({nodes:,} nodes): parse {parse_s:.2f} s, load "
        f"{load_s:.2f} s, first decision of a new client {cold_ms:.0f} ms"
    )
    fill_pipelined(lg, orders(shape, traders, "touch"))
    agg_bytes = int(ctx.client.memory_usage(lg.keys.agg(shape.id), samples=0) or 0)
    # Spread the measured orders over the whole tree: a stride co-prime with T.
    stride = 7919
    paths = shape.paths()
    spread = [paths[(i * stride) % traders] for i in range(min(traders, 4096))]
    series: dict[str, list[float]] = defaultdict(list)
    p50: list[float] = []
    inner: list[dict[str, tuple[float, float]]] = []
    for rep in range(mode.growth_reps):
        batch = list(orders(shape, n, f"m{rep}", paths=spread))
        series["five"].append(floors.server_us("five", n))
        cost, parts = server_cost(ctx.client, each(lg.reserve, batch))
        series["reserve"].append(cost)
        inner.append(parts)
        lat = list(orders(shape, min(n, 500), f"l{rep}", paths=spread))
        samples, _ = timed_calls(at(lg.reserve, lat), len(lat))
        p50.append(percentiles(samples)["p50"])
    lg.redis.close()
    return {
        "traders": traders,
        "nodes": nodes,
        "parse_s": parse_s,
        "load_s": load_s,
        "cold_first_decision_ms": cold_ms,
        "policy_bytes_per_node": policy_bytes / nodes,
        "state_bytes_per_node": agg_bytes / nodes,
        "reserve_us": summarize(series["reserve"], "µs"),
        "five_level_us": summarize(series["five"], "µs"),
        "reserve_vs_five": ratio_of(series["reserve"], series["five"]),
        "reserve_p50_us": summarize(p50, "µs"),
        "reserve_inner_commands_us": inner_medians(inner),
    }


def run(ctx: Context) -> dict[str, Any]:
    steps = {}
    for traders in ctx.mode.trader_steps:
        ctx.progress.say(f"{traders:,} traders")
        steps[str(traders)] = step(ctx, traders)
    rows = []
    for s in steps.values():
        rows.append(
            row(
                f"reserve with {s['traders']:,} traders ({s['nodes']:,} nodes), Redis CPU",
                s["reserve_us"],
                vs="five-level floor",
                ratio=s["reserve_vs_five"],
                note=f"policy {s['policy_bytes_per_node']:.0f} B/node, state "
                f"{s['state_bytes_per_node']:.0f} B/node; load {s['load_s']:.2f} s; new "
                f"client's first decision {s['cold_first_decision_ms']:.0f} ms",
            )
        )
    ctx.flush()
    return {"steps": steps, "rows": rows}
