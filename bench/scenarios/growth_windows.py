"""Scenario 6c: window memory per node as message rates rise.

One trader with a per-second window (limit far above the rate, so every
message is counted) receives ``r`` messages per second for a few seconds,
paced in real time in batches every 50 ms. The node's window memory is how
much larger its firm's aggregate hash is than that of the same firm, sent
the same orders, without the window (:func:`bench.scenarios.limiters.window_bytes`).
Beside it, the ``limits`` moving window and sliding-window counter holding
``r`` messages (limit 100,000/s, so nothing caps them).
"""

from __future__ import annotations

import time
from typing import Any

from limits import RateLimitItemPerSecond

from bench.harness import summarize
from bench.scenarios import Context, row
from bench.scenarios.limiters import limiter_bytes, limiters_for, window_bytes
from bench.workload import FirmShape, orders, reserve_many

TITLE = "Growth: message rates"

TICK_S = 0.05


def paced(lg: Any, shape: FirmShape, rate: int, seconds: int) -> tuple[int, float]:
    """Send ``rate`` orders per second for ``seconds`` to the first trader; (sent, rate)."""
    per_tick = max(1, round(rate * TICK_S))
    total = rate * seconds
    sent = 0
    start = time.monotonic()
    gen = orders(shape, total, f"rate{rate}", paths=shape.paths()[:1])
    while sent < total:
        batch = [next(gen) for _ in range(min(per_tick, total - sent))]
        reserve_many(lg, batch)
        sent += len(batch)
        due = start + sent / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return sent, sent / (time.monotonic() - start)


def run(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    lg = ctx.ledger("rates")
    limiters = limiters_for(ctx.url)
    item = RateLimitItemPerSecond(100_000)
    steps: dict[str, Any] = {}
    for rate in mode.rates:
        ctx.progress.say(f"{rate:,} messages/s for {mode.rate_seconds} s")
        achieved: list[float] = []

        def send(
            lg: Any, shape: FirmShape, n: int, rate: int = rate, achieved: list[float] = achieved
        ) -> int:
            sent, per_s = paced(lg, shape, rate, mode.rate_seconds)
            achieved.append(per_s)
            return sent

        size, sent = window_bytes(
            ctx, lg, f"R{rate}", rate * mode.rate_seconds, 1_000_000_000, send=send
        )
        step = {"sent": sent, "achieved_per_s": achieved[0], "ledger_bytes": size}
        for name, lim in limiters.items():
            lim.hit(item, f"rate-{name}-{rate}", cost=rate)
            step[f"{name}_bytes"] = limiter_bytes(
                ctx.client, name, lim, item, f"rate-{name}-{rate}"
            )
        steps[str(rate)] = step
    ledger_bytes = [s["ledger_bytes"] for s in steps.values()]
    rows = [
        row(
            "ledger window memory per node, across message rates",
            summarize(ledger_bytes, "B"),
            note=", ".join(
                f"{int(r):,}/s: {s['ledger_bytes']} B (achieved {s['achieved_per_s']:,.0f}/s)"
                for r, s in steps.items()
            ),
        ),
        row(
            "limits moving window memory per node, across message rates",
            summarize([s["moving_window_bytes"] for s in steps.values()], "B"),
            note=", ".join(
                f"{int(r):,}/s: {s['moving_window_bytes']:,} B" for r, s in steps.items()
            ),
        ),
    ]
    return {"steps": steps, "rows": rows}
