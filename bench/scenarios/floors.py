"""Scenario 1: the floors, on the same server as everything else.

EVALSHA of ``return 1``; the minimal five-level reservation script; PING,
both as Redis CPU per call and as a round trip from Python.
"""

from __future__ import annotations

from typing import Any

from bench.harness import percentiles, ratio_of, server_cost, summarize
from bench.scenarios import Context, row

TITLE = "Floors"


def run(ctx: Context) -> dict[str, Any]:
    mode, floors = ctx.mode, ctx.floors
    n = mode.calls
    one, five, ping_cpu, ping_p50, ping_p99 = [], [], [], [], []
    for rep in range(mode.reps):
        ctx.progress.say(f"repetition {rep + 1}/{mode.reps}")
        one.append(floors.server_us("one", n))
        five.append(floors.server_us("five", n))
        ping_cpu.append(
            server_cost(ctx.client, lambda: [ctx.client.ping() for _ in range(n)], command="ping")[
                0
            ]
        )
        samples, _ = floors.ping_samples(mode.latency_calls)
        pct = percentiles(samples)
        ping_p50.append(pct["p50"])
        ping_p99.append(pct["p99"])
    figures = {
        "evalsha_return1_us": summarize(one, "µs"),
        "five_level_us": summarize(five, "µs"),
        "ping_server_us": summarize(ping_cpu, "µs"),
        "ping_rtt_p50_us": summarize(ping_p50, "µs"),
        "ping_rtt_p99_us": summarize(ping_p99, "µs"),
    }
    rows = [
        row("EVALSHA `return 1`, Redis CPU per call", figures["evalsha_return1_us"]),
        row(
            "five-level floor script, Redis CPU per call",
            figures["five_level_us"],
            vs="EVALSHA `return 1`",
            ratio=ratio_of(five, one),
        ),
        row("PING, Redis CPU per call", figures["ping_server_us"]),
        row("PING round trip from Python, p50", figures["ping_rtt_p50_us"]),
        row("PING round trip from Python, p99", figures["ping_rtt_p99_us"]),
    ]
    return {"figures": figures, "rows": rows}
