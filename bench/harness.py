"""Timing, repetitions and statistics shared by every scenario.

A figure is a dict ``{"median", "min", "max", "n", "unit"}`` over repetitions
(:func:`summarize`). A ratio is computed per repetition from two things
measured one right after the other (:func:`paired`), and then summarized, so
a burst of load from another process moves both sides of it.

Server-side CPU comes from ``INFO commandstats``: :func:`server_cost` resets
the counters with ``CONFIG RESETSTAT``, runs the work and reads back the
microseconds Redis spent per call of the measured command. Redis 7 also
counts every command a script issues, which :func:`server_cost` returns as a
breakdown per outer call.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis

__all__ = [
    "summarize",
    "percentiles",
    "paired",
    "ratio_of",
    "server_cost",
    "commandstats",
    "timed_calls",
    "each",
    "inner_medians",
    "at",
    "Progress",
    "CountingConnection",
]


def summarize(values: Iterable[float], unit: str) -> dict[str, Any]:
    """Median, min and max of repeated measurements."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("no values to summarize")
    return {
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "n": len(vals),
        "unit": unit,
    }


def ratio_of(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """Per-repetition ratios of two paired series, summarized."""
    if len(numerators) != len(denominators):
        raise ValueError("paired series differ in length")
    return summarize((a / b for a, b in zip(numerators, denominators, strict=True)), "x")


def percentiles(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50, p99 and p99.9 of latency samples, in microseconds (nearest rank)."""
    ordered = sorted(samples_ns)
    n = len(ordered)

    def rank(q: float) -> float:
        idx = min(n - 1, max(0, int(q * n + 0.5) - 1))
        return ordered[idx] / 1000.0

    return {"p50": rank(0.50), "p99": rank(0.99), "p999": rank(0.999)}


def paired(reps: int, measures: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run every measure once per repetition, rotating their order; the values per measure.

    Rotation spreads any warm-up or drift over all measures instead of
    always favouring the first one.
    """
    names = list(measures)
    out: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            out[name].append(measures[name]())
    return out


def commandstats(client: Any) -> dict[str, tuple[int, int]]:
    """``command -> (calls, usec)`` from ``INFO commandstats``."""
    raw = client.info("commandstats")
    out = {}
    for key, value in raw.items():
        name = key.removeprefix("cmdstat_")
        out[name] = (int(value["calls"]), int(value["usec"]))
    return out


#: The commands a script call arrives as: EVALSHA, or FCALL of the function library.
SCRIPT_CALLS = ("evalsha", "fcall")


def server_cost(
    client: Any, work: Callable[[], Any], command: str | tuple[str, ...] = SCRIPT_CALLS
) -> tuple[float, dict[str, tuple[float, float]]]:
    """Redis CPU microseconds per call of ``command`` (or of the commands, summed)
    while ``work()`` runs.

    Returns the figure and, for every other command counted meanwhile (the
    ones scripts issue), ``(calls, µs)`` per call of ``command``.
    """
    names = (command,) if isinstance(command, str) else command
    client.config_resetstat()
    work()
    stats = commandstats(client)
    calls = sum(stats.get(name, (0, 0))[0] for name in names)
    usec = sum(stats.get(name, (0, 0))[1] for name in names)
    if calls == 0:
        raise RuntimeError(f"no {' or '.join(names)} call was counted")
    breakdown = {
        name: (c / calls, u / calls)
        for name, (c, u) in stats.items()
        if name not in names and not name.startswith(("config", "info"))
    }
    return usec / calls, breakdown


def inner_medians(runs: Sequence[dict[str, tuple[float, float]]]) -> dict[str, float]:
    """Median µs per outer call of each command scripts issued, over :func:`server_cost` runs."""
    names = sorted({name for run in runs for name in run})
    return {name: statistics.median(run.get(name, (0.0, 0.0))[1] for run in runs) for name in names}


def each(fn: Callable[[Any], Any], items: Sequence[Any]) -> Callable[[], None]:
    """Work that calls ``fn`` on every item, for :func:`server_cost`."""

    def work() -> None:
        for item in items:
            fn(item)

    return work


def at(fn: Callable[[Any], Any], items: Sequence[Any]) -> Callable[[int], Any]:
    """``i -> fn(items[i])``, for :func:`timed_calls`."""

    def call(i: int) -> Any:
        return fn(items[i])

    return call


def timed_calls(fn: Callable[[int], Any], n: int, offset: int = 0) -> tuple[list[int], float]:
    """Call ``fn(i)`` n times; per-call latencies in ns and the wall time in seconds."""
    samples = [0] * n
    clock = time.perf_counter_ns
    start = clock()
    for i in range(n):
        t0 = clock()
        fn(offset + i)
        samples[i] = clock() - t0
    return samples, (clock() - start) / 1e9


class Progress:
    """One line per step on stderr, with the time since the run started."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.section = ""

    def begin(self, section: str, what: str) -> None:
        self.section = section
        self.say(what)

    def say(self, message: str) -> None:
        elapsed = time.monotonic() - self.start
        prefix = f"[{elapsed:6.1f}s] {self.section}: " if self.section else f"[{elapsed:6.1f}s] "
        print(prefix + message, file=self.stream, flush=True)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.start


class CountingConnection(redis.Connection):
    """A redis-py connection that counts its writes: one per round trip, pipelines included."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]
