"""What the racing worker processes run (importable, so a spawned process can find it).

Every worker connects once per process and warms up before ``start_at``
(a ``time.monotonic()`` instant, which Linux shares between processes), so
all workers start their timed part together and connection set-up, route
reads and script loading stay outside every measurement.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import redis

from bench.workload import FirmShape, fill_pipelined, orders, reserve_many
from ledger import Ledger, Order
from ledger.policy.money import notional_minor, parse_price, parse_qty

__all__ = ["Pool", "throughput", "race", "fill", "watch_reserve", "watch_key"]

_LEDGERS: dict[tuple[str, str], Ledger] = {}


def _ledger(url: str, prefix: str) -> Ledger:
    lg = _LEDGERS.get((url, prefix))
    if lg is None:
        lg = Ledger.from_url(url, prefix=prefix, timeout_s=30.0, actor="bench")
        lg.ping()
        lg.prefetch_routes()
        _LEDGERS[(url, prefix)] = lg
    return lg


def _wait(start_at: float) -> None:
    delay = start_at - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _pid(_i: int) -> int:
    time.sleep(0.2)
    return os.getpid()


def throughput(
    kind: str,
    url: str,
    prefix: str,
    paths: list[tuple[str, str, str]],
    tag: str,
    start_at: float,
    seconds: float,
    batch: int = 50,
) -> dict[str, Any]:
    """Run ``kind`` (ping | reserve | pipelined) back to back for ``seconds``; the count."""
    lg = _ledger(url, prefix)
    i = 0

    def order() -> Order:
        nonlocal i
        account, strategy, trader = paths[i % len(paths)]
        i += 1
        return Order(
            f"{tag}-{i}",
            trader,
            strategy,
            account,
            "XYZ",
            "buy" if i % 2 else "sell",
            "10",
            "100.25",
        )

    def step() -> int:
        if kind == "ping":
            lg.redis.ping()
            return 1
        if kind == "reserve":
            return int(lg.reserve(order()).accepted)
        return sum(d.accepted for d in reserve_many(lg, [order() for _ in range(batch)]))

    for _ in range(5):
        step()
    _wait(start_at)
    t0 = time.monotonic()
    deadline = t0 + seconds
    count = calls = 0
    while time.monotonic() < deadline:
        done = step()
        count += done
        calls += 1 if kind != "pipelined" else batch
    return {"count": calls, "accepted": count, "t0": t0, "t1": time.monotonic()}


def fill(
    url: str, prefix: str, shape: FirmShape, tag: str, start: int, count: int, start_at: float
) -> int:
    """Reserve ``count`` orders of ``shape``, pipelined; the number accepted."""
    lg = _ledger(url, prefix)
    return fill_pipelined(lg, orders(shape, count, tag, start=start))


def watch_key(prefix: str, firm: str, scope: str) -> str:
    # One plain key per node, all with the firm's hash tag: WATCH works on whole keys.
    return f"{prefix}:watch:{{{firm}}}:{scope}"


def watch_reserve(client: Any, keys: list[str], limits: list[int], amount: int) -> tuple[bool, int]:
    """The optimistic alternative: WATCH five totals, read, check, MULTI/INCRBY x5/EXEC.

    Retries when another client changed a watched total in between.
    Returns (accepted, retries).
    """
    retries = 0
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(*keys)
                used = pipe.mget(keys)
                if any(int(u or 0) + amount > lim for u, lim in zip(used, limits, strict=True)):
                    pipe.unwatch()
                    return False, retries
                pipe.multi()
                for key in keys:
                    pipe.incrby(key, amount)
                pipe.execute()
                return True, retries
            except redis.WatchError:
                retries += 1


def race(
    kind: str,
    url: str,
    prefix: str,
    order_rows: list[tuple[str, ...]],
    desks: dict[str, str],
    firm: str,
    gross_limits: dict[str, int],
    start_at: float,
) -> dict[str, Any]:
    """Send every order once through ``kind`` (ledger | watch); accepted, rejected, retries."""
    accepted = rejected = retries = 0
    if kind == "ledger":
        lg = _ledger(url, prefix)
        _wait(start_at)
        t0 = time.monotonic()
        for row in order_rows:
            if lg.reserve(Order(*row)).accepted:
                accepted += 1
            else:
                rejected += 1
    else:
        client = redis.Redis.from_url(url, socket_timeout=30.0)
        client.ping()
        _wait(start_at)
        t0 = time.monotonic()
        for row in order_rows:
            _, trader, strategy, account, _, _, qty, price = row
            scopes = [
                ("firm", firm),
                ("desk", desks[account]),
                ("account", account),
                ("strategy", strategy),
                ("trader", trader),
            ]
            keys = [watch_key(prefix, firm, f"{level}:{node}") for level, node in scopes]
            limits = [gross_limits[level] for level, _ in scopes]
            amount = notional_minor(parse_qty(qty), parse_price(price), 2)
            ok, tries = watch_reserve(client, keys, limits, amount)
            accepted += ok
            rejected += not ok
            retries += tries
        client.close()
    return {
        "accepted": accepted,
        "rejected": rejected,
        "retries": retries,
        "t0": t0,
        "t1": time.monotonic(),
    }


class Pool:
    """Eight spawned worker processes, started once and reused by every scenario."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.executor = ProcessPoolExecutor(max_workers=size, mp_context=get_context("spawn"))
        pids = set(self.executor.map(_pid, range(size * 2)))
        self.pids = pids

    def run(
        self, fn: Any, calls: list[dict[str, Any]], lead_s: float = 0.25
    ) -> list[dict[str, Any]]:
        """Run ``fn(**kw, start_at=...)`` once per entry of ``calls``, all starting together."""
        if len(calls) > self.size:
            raise ValueError(f"{len(calls)} workers asked for, the pool has {self.size}")
        start_at = time.monotonic() + lead_s
        futures = [self.executor.submit(fn, **kw, start_at=start_at) for kw in calls]
        return [f.result() for f in futures]

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
