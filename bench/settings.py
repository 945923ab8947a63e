"""The sizes of each benchmark mode.

``smoke`` only proves that every scenario runs (the test suite uses it),
``quick`` finishes in under a minute, ``full`` in under fifteen. The sizes
change how many repetitions and calls back each figure, never what is measured.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    #: Repetitions of every paired measurement (median and min-max are over these).
    reps: int
    #: Calls per server-side CPU measurement (between two CONFIG RESETSTAT).
    calls: int
    #: Sequential latency samples per repetition.
    latency_calls: int
    #: Process counts for the throughput scenario, and seconds per measurement.
    procs: tuple[int, ...]
    proc_seconds: float
    proc_reps: int
    #: Orders each of the racing processes sends (ledger and WATCH/MULTI alike).
    race_orders: int
    race_reps: int
    #: Hits per limiter per repetition.
    limiter_hits: int
    #: Repetitions and calls per measurement at each growth step.
    growth_reps: int
    growth_calls: int
    #: Open orders the growth scenario fills to, step by step.
    open_steps: tuple[int, ...]
    #: Traders in the generated policy, step by step.
    trader_steps: tuple[int, ...]
    #: Message rates (per second) the window-memory scenario simulates, and for how long.
    rates: tuple[int, ...]
    rate_seconds: int
    #: Seconds per gateway load measurement.
    gateway_seconds: float


MODES = {
    "smoke": Mode(
        name="smoke",
        reps=2,
        calls=100,
        latency_calls=200,
        procs=(1, 2),
        proc_seconds=0.2,
        proc_reps=1,
        race_orders=40,
        race_reps=1,
        limiter_hits=100,
        growth_reps=2,
        growth_calls=100,
        open_steps=(500, 1_500),
        trader_steps=(50, 200),
        rates=(10, 100),
        rate_seconds=1,
        gateway_seconds=0.5,
    ),
    "quick": Mode(
        name="quick",
        reps=3,
        calls=300,
        latency_calls=600,
        procs=(1, 2, 4, 8),
        proc_seconds=0.3,
        proc_reps=1,
        race_orders=150,
        race_reps=2,
        limiter_hits=300,
        growth_reps=3,
        growth_calls=300,
        open_steps=(1_000, 20_000),
        trader_steps=(100, 1_000, 3_000),
        rates=(10, 100, 1_000),
        rate_seconds=1,
        gateway_seconds=1.0,
    ),
    "full": Mode(
        name="full",
        reps=7,
        calls=3_000,
        latency_calls=5_000,
        procs=(1, 2, 4, 8),
        proc_seconds=2.0,
        proc_reps=3,
        race_orders=1_000,
        race_reps=3,
        limiter_hits=3_000,
        growth_reps=5,
        growth_calls=1_500,
        open_steps=(1_000, 100_000, 1_000_000),
        trader_steps=(100, 1_000, 10_000, 100_000),
        rates=(10, 100, 1_000, 10_000),
        rate_seconds=3,
        gateway_seconds=5.0,
    ),
}
