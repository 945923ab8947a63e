"""One measurement of one code tree, for bench/compare.py.

``python compare_worker.py TASK URL PREFIX N``, run with ``PYTHONPATH`` set
to the tree measured (its ``ledger`` and ``bench.workload``), so the same
file measures the old code and the new one; it uses only what both have. Prints one JSON object.

- ``server``: Redis CPU µs per call (``INFO commandstats``, EVALSHA and FCALL
  summed) of a reserve with core controls and message windows, a reserve
  with all controls on, a fill closing an order and a release.
- ``seq``: one process, PINGs then reserves one by one: p50 of each and the
  process's CPU µs per call (user and system).
- ``procs``: N processes reserving for a fixed time on one firm: decisions/s.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from multiprocessing import get_context
from typing import Any

import redis

from bench.workload import FirmShape, arm_controls, orders, policy_doc, refresh_prices
from ledger import Ledger, parse_policy

FULL = FirmShape("FULL", controls="full", traders=64, accounts=8)
ALL = FirmShape("ALLC", controls="all")
CALLS = ("evalsha", "fcall")


def _ledger(url: str, prefix: str, *shapes: FirmShape) -> Ledger:
    lg = Ledger.from_url(url, prefix=prefix, timeout_s=60.0, actor="bench")
    if shapes:
        lg.load_policy(parse_policy(policy_doc(list(shapes)), source=prefix), by="bench")
    lg.ping()
    lg.prefetch_routes()
    return lg


def main_thread_cpu_us(client: redis.Redis) -> float:
    """CPU the server's main thread has used (user + system), µs: unlike the
    commandstats time, it does not grow while the server waits for a core."""
    cpu = client.info("cpu")
    return (cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"]) * 1e6


def _cost(client: redis.Redis, work: Any, out: dict[str, float], name: str) -> None:
    """``out[name]``: commandstats µs per call; ``out[name + "_server_cpu"]``: main-thread
    CPU µs per call (network and parsing included)."""
    client.config_resetstat()
    cpu0 = main_thread_cpu_us(client)
    work()
    cpu1 = main_thread_cpu_us(client)
    stats = client.info("commandstats")
    calls = sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in CALLS)
    usec = sum(int(stats.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in CALLS)
    out[name] = usec / calls
    out[name + "_server_cpu"] = (cpu1 - cpu0) / calls


def server(url: str, prefix: str, n: int) -> dict[str, float]:
    client = redis.Redis.from_url(url)
    full = _ledger(url, prefix + "f", FULL)
    every = _ledger(url, prefix + "a", ALL)
    arm_controls(every, ALL)
    for o in orders(ALL, 50, "warm", start=900_000):
        every.reserve(o)
    warm = list(orders(FULL, 50, "warm"))
    for o in warm:
        full.reserve(o)
    batch = list(orders(FULL, n, "m"))
    out: dict[str, float] = {}
    _cost(client, lambda: [full.reserve(o) for o in batch], out, "reserve")
    refresh_prices(every)
    seen: list[Any] = []
    allc = list(orders(ALL, n, "a"))
    _cost(client, lambda: seen.extend(every.reserve(o) for o in allc), out, "reserve_all")
    refused = [d for d in seen if not d.accepted]
    if refused:
        raise RuntimeError(f"all controls: {len(refused)} refused, e.g. {refused[0]}")
    half = batch[: n // 2]
    _cost(
        client,
        lambda: [
            full.fill(o.order_id, f"{o.order_id}-f", o.qty, o.price, account=o.account)
            for o in half
        ],
        out,
        "fill",
    )
    _cost(
        client,
        lambda: [full.release(o.order_id, "cancelled", account=o.account) for o in batch[n // 2 :]],
        out,
        "release",
    )
    return out


def _timed(fn: Any, items: list[Any]) -> tuple[float, float]:
    """(p50 µs of one call, process CPU µs per call)."""
    samples = []
    c0 = time.process_time()
    for item in items:
        t0 = time.perf_counter_ns()
        fn(item)
        samples.append(time.perf_counter_ns() - t0)
    cpu = (time.process_time() - c0) / len(items) * 1e6
    return statistics.median(samples) / 1000, cpu


def seq(url: str, prefix: str, n: int) -> dict[str, float]:
    lg = _ledger(url, prefix, FULL)
    for o in orders(FULL, 50, "warm"):
        lg.reserve(o)
    ping = lg.redis.ping
    ping_p50, ping_cpu = _timed(lambda _i: ping(), list(range(n)))
    res_p50, res_cpu = _timed(lg.reserve, list(orders(FULL, n, "s")))
    return {
        "ping_p50": ping_p50,
        "ping_cpu": ping_cpu,
        "reserve_p50": res_p50,
        "reserve_cpu": res_cpu,
    }


def _racer(url: str, prefix: str, tag: str, start_at: float, seconds: float) -> int:
    lg = _ledger(url, prefix)
    batch = orders(FULL, 10**7, tag)
    for _ in range(5):
        lg.reserve(next(batch))
    time.sleep(max(0.0, start_at - time.monotonic()))
    count = 0
    deadline = start_at + seconds
    while time.monotonic() < deadline:
        lg.reserve(next(batch))
        count += 1
    return count


def procs(url: str, prefix: str, n: int, seconds: float = 3.0) -> dict[str, float]:
    _ledger(url, prefix, FULL)
    start_at = time.monotonic() + 1.5
    with get_context("fork").Pool(n) as pool:
        counts = pool.starmap(_racer, [(url, prefix, f"p{i}", start_at, seconds) for i in range(n)])
    return {"decisions_per_s": sum(counts) / seconds}


if __name__ == "__main__":
    task, url, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    result = {"server": server, "seq": seq, "procs": procs}[task](url, prefix, n)
    print(json.dumps(result))
