"""Races between OS processes, each with its own Ledger.from_url, on one server.

1. Eight processes hammer one tight budget with random orders (and replaces,
   fills, cancel requests and releases of their own orders). While they run,
   the test reads the aggregates again and again: no snapshot may show a node
   past an enforced limit. Afterwards the aggregates must equal the sums the
   processes recorded from their own results, ``ledger check`` must pass, and
   releasing every open order must bring every open aggregate back to zero.
2. Several processes send the same order ids at once, some with other fields:
   each id is decided exactly once, every identical retry gets that decision
   back, every different one gets DUPLICATE_ORDER_ID.

Fills are at the order price and prices have at most two decimals, so a fill
moves exactly what it frees from the reservation: under those conditions no
node may ever be past an enforced limit.
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import random
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import redis

from ledger import Ledger, Order, Reason, parse_policy
from ledger.facade.views import Aggregates, aggregates

pytestmark = pytest.mark.slow

FIRM = "R"
MINOR_UNITS = 2
DOC: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": MINOR_UNITS,
    "firms": [
        {
            "id": FIRM,
            "limits": {
                "max_gross_notional": "30000",
                "max_net_notional": "15000",
                "max_open_orders": 36,
            },
            "desks": [
                {
                    "id": "RD1",
                    "limits": {"max_gross_notional": "20000", "max_open_orders": 24},
                    "accounts": [
                        {"id": "RA1", "limits": {"max_order_notional": "3500"}},
                        {"id": "RA2", "limits": {"max_net_notional": "7000"}},
                    ],
                },
                {
                    "id": "RD2",
                    "limits": {"max_gross_notional": "14000", "max_net_notional": "8000"},
                    "accounts": [{"id": "RA3", "limits": {"max_open_orders": 14}}],
                },
            ],
        }
    ],
    "strategies": [
        {"id": "RS1", "accounts": ["RA1", "RA2"], "limits": {"max_gross_notional": "15000"}},
        {"id": "RS2", "accounts": ["RA2", "RA3"], "limits": {"max_open_orders": 26}},
    ],
    "traders": [
        {
            "id": "RT1",
            "accounts": ["RA1", "RA2", "RA3"],
            "strategies": ["RS1", "RS2"],
            "limits": {"max_gross_notional": "22000"},
        },
        {
            "id": "RT2",
            "accounts": ["RA2", "RA3"],
            "strategies": ["RS2"],
            "limits": {"max_gross_notional": "12000", "max_net_notional": "6000"},
        },
    ],
}
POLICY = parse_policy(DOC, source="test_race")
#: (account, strategy, trader) combinations that are entitled.
COMBOS = (
    ("RA1", "RS1", "RT1"),
    ("RA2", "RS1", "RT1"),
    ("RA2", "RS2", "RT1"),
    ("RA3", "RS2", "RT1"),
    ("RA2", "RS2", "RT2"),
    ("RA3", "RS2", "RT2"),
)
#: At most two decimals: notional is exact in cents, so fills never round.
PRICES = ("5", "7.5", "9.99", "12.25", "15", "18.4", "21.05", "24.99")
WORKERS = 8
ORDERS_PER_WORKER = 400


def notional(qty: int, price: str) -> int:
    return int(math.ceil(Decimal(qty) * Decimal(price) * 10**MINOR_UNITS))


def path_of(account: str, strategy: str, trader: str) -> tuple[str, ...]:
    node = POLICY.node(f"account:{account}")
    assert node is not None and node.parent is not None
    return (
        f"firm:{FIRM}",
        node.parent,
        f"account:{account}",
        f"strategy:{strategy}",
        f"trader:{trader}",
    )


def over_limit(snapshot: dict[str, Aggregates]) -> list[str]:
    """Every enforced limit of the policy that a snapshot of the aggregates exceeds."""
    found = []
    for scope, node in POLICY.nodes.items():
        a = snapshot.get(scope, Aggregates())
        f = a.fb - a.fs
        used = {
            "max_gross_notional": a.ob + a.os + a.fb + a.fs,
            "max_net_notional": max(abs(f + a.ob), abs(f - a.os)),
            "max_open_orders": a.n,
        }
        for name, limit in node.limits.items():
            if name in used and name not in node.limits.shadow and used[name] > limit:
                found.append(f"{scope}: {name} {used[name]} > {limit}")
    return found


# -- processes ---------------------------------------------------------------------------


def _entry(run: Callable[..., Any], worker: int, out: Any, *args: Any) -> None:
    try:
        out.put((worker, run(worker, *args)))
    except BaseException:
        out.put((worker, "failed:\n" + traceback.format_exc()))


def _connect(url: str, worker: int, barrier: Any) -> Ledger:
    lg = Ledger.from_url(url, timeout_s=30.0, actor=f"race-{worker}")
    assert lg.policy() is not None  # fetched before the start, not inside the race
    barrier.wait(timeout=120)
    return lg


def _budget_run(worker: int, url: str, barrier: Any) -> dict[str, Any]:
    """Random orders on the shared budget; returns what this process was told."""
    rng = random.Random(1000 + worker)
    lg = _connect(url, worker, barrier)
    orders: dict[str, dict[str, Any]] = {}
    reasons: Counter[str] = Counter()
    amounts: list[tuple[str, int, int]] = []  # (what, expected notional, answered notional)
    for i in range(ORDERS_PER_WORKER):
        combo = rng.choice(COMBOS)
        side, qty, price = rng.choice(("buy", "sell")), rng.randint(10, 200), rng.choice(PRICES)
        oid = f"w{worker}-{i}"
        d = lg.reserve(Order(oid, combo[2], combo[1], combo[0], "XYZ", side, str(qty), price))
        reasons[f"reserve {d.reason.value}"] += 1
        if d.accepted:
            amounts.append(("reserve", notional(qty, price), d.notional))
            orders[oid] = {
                "path": path_of(*combo),
                "side": side,
                "qty": qty,
                "price": price,
                "cum": 0,
                "res": d.notional,
                "fn": 0,
                "status": "open",
            }
        opened = [k for k, o in orders.items() if o["status"] == "open"]
        if not opened:
            continue
        oid = rng.choice(opened)
        o = orders[oid]
        roll = rng.random()
        if roll < 0.30:
            if rng.random() < 0.5:
                c = lg.cancel_request(oid)
                reasons[f"cancel {c.reason.value}"] += 1
            r = lg.release(oid, "cancelled")
            reasons[f"release {r.reason.value}"] += 1
            amounts.append(("release", o["res"], r.released))
            o["status"], o["res"] = "released", 0
        elif roll < 0.42:
            new_qty = max(o["cum"] + 1, o["qty"] + rng.randint(-60, 60))
            new_price = rng.choice(PRICES)
            d = lg.replace(oid, str(new_qty), new_price)
            reasons[f"replace {d.reason.value}"] += 1
            if d.accepted:
                amounts.append(("replace", notional(new_qty - o["cum"], new_price), d.notional))
                o["qty"], o["price"], o["res"] = new_qty, new_price, d.notional
        elif roll < 0.47:
            fill_qty = rng.randint(1, min(o["qty"] - o["cum"], 10))
            f = lg.fill(oid, f"{oid}-f{o['cum']}", str(fill_qty), o["price"])
            reasons[f"fill {f.reason.value}"] += 1
            amounts.append(("fill", notional(fill_qty, o["price"]), f.fill_notional))
            amounts.append(("fill reserved", notional(f.leaves, o["price"]), f.reserved))
            o["cum"], o["res"], o["fn"] = f.cum_qty, f.reserved, o["fn"] + f.fill_notional
            if f.leaves == 0:
                o["status"] = "filled"
    return {"orders": orders, "reasons": reasons, "amounts": amounts}


def _same_ids_run(
    worker: int,
    url: str,
    barrier: Any,
    variant: int,
    specs: list[tuple[str, tuple[str, str, str], str, tuple[int, int], str]],
) -> list[tuple[Any, ...]]:
    """Reserve the shared ids in the shared order; ``variant`` picks the qty each is sent with."""
    lg = _connect(url, worker, barrier)
    out = []
    for oid, combo, side, qtys, price in specs:
        d = lg.reserve(
            Order(oid, combo[2], combo[1], combo[0], "XYZ", side, str(qtys[variant]), price)
        )
        out.append(
            (
                oid,
                variant,
                d.accepted,
                d.reason,
                d.scope,
                d.limit,
                d.used,
                d.requested,
                d.notional,
                d.replayed,
            )
        )
    return out


def run_processes(
    jobs: list[tuple[Any, ...]],
    run: Callable[..., Any],
    while_running: Callable[[], None] = lambda: None,
) -> dict[int, Any]:
    """Start one 'spawn' process per job, call ``while_running`` until all have answered."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(len(jobs))
    procs = [
        ctx.Process(target=_entry, args=(run, i, out, job[0], barrier, *job[1:]))
        for i, job in enumerate(jobs)
    ]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    try:
        while len(results) < len(procs):
            while_running()
            try:
                worker, result = out.get(timeout=0.005)
            except queue.Empty:
                if all(p.exitcode is not None for p in procs) and out.empty():
                    pytest.fail(f"processes ended with only {len(results)} results")
                continue
            if isinstance(result, str):
                pytest.fail(f"process {worker} {result}")
            results[worker] = result
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
        out.close()
        out.join_thread()
    return results


# -- tests -------------------------------------------------------------------------------


def test_processes_never_overrun_a_shared_budget(redis_client: redis.Redis, redis_url: str) -> None:
    lg = Ledger(redis_client, actor="race-test")
    lg.load_policy(POLICY, by="test", source="test_race")

    snapshots = 0
    breaches: list[str] = []

    def watch() -> None:
        nonlocal snapshots
        breaches.extend(over_limit(aggregates(redis_client, lg.keys, FIRM)))
        snapshots += 1

    results = run_processes([(redis_url,)] * WORKERS, _budget_run, watch)
    watch()
    assert snapshots > 1
    assert breaches == []

    reasons: Counter[str] = sum((r["reasons"] for r in results.values()), Counter())
    assert (
        sum(v for k, v in reasons.items() if k.startswith("reserve")) == WORKERS * ORDERS_PER_WORKER
    )
    # The budget was contended: every binding kind of reject happened, and so did accepts.
    for seen in (
        "reserve OK",
        "reserve GROSS_LIMIT",
        "reserve OPEN_ORDERS_LIMIT",
        "replace OK",
        "fill OK",
        "release OK",
    ):
        assert reasons[seen] > 0, (seen, reasons)
    assert reasons["reserve OK"] < WORKERS * ORDERS_PER_WORKER / 2, reasons
    # Only the documented answers; a cancel request of an own open order always counts.
    assert {k.split()[1] for k in reasons} <= {
        "OK",
        "GROSS_LIMIT",
        "NET_LIMIT",
        "OPEN_ORDERS_LIMIT",
        "MAX_ORDER_NOTIONAL",
    }
    for what, expected, answered in (a for r in results.values() for a in r["amounts"]):
        assert answered == expected, what

    # The aggregates are exactly the sums of what the processes were told.
    orders = {oid: o for r in results.values() for oid, o in r["orders"].items()}
    sums: dict[str, Aggregates] = defaultdict(Aggregates)
    for o in orders.values():
        buy = o["side"] == "buy"
        for scope in o["path"]:
            a = sums[scope]
            a.ob += o["res"] if buy else 0
            a.os += 0 if buy else o["res"]
            a.fb += o["fn"] if buy else 0
            a.fs += 0 if buy else o["fn"]
            a.n += o["status"] == "open"
    got = aggregates(redis_client, lg.keys, FIRM)
    for scope in POLICY.nodes:
        assert got.get(scope, Aggregates()) == sums.get(scope, Aggregates()), scope
    report = lg.check()
    assert report.ok, report.breaches
    assert report.orders == len(orders)

    # Releasing every open order brings every open aggregate back to zero.
    opened = sorted(oid for oid, o in orders.items() if o["status"] == "open")
    assert opened, "the race should leave open orders"
    for oid in opened:
        r = lg.release(oid, "end of test")
        assert (r.reason, r.released, r.already_closed) == (Reason.OK, orders[oid]["res"], False)
    after = aggregates(redis_client, lg.keys, FIRM)
    for scope in POLICY.nodes:
        a, s = after.get(scope, Aggregates()), sums.get(scope, Aggregates())
        assert (a.ob, a.os, a.n) == (0, 0, 0), scope
        assert (a.fb, a.fs) == (s.fb, s.fs), scope
    assert lg.check().ok


def test_same_order_ids_from_many_processes_reserve_once(
    redis_client: redis.Redis, redis_url: str
) -> None:
    lg = Ledger(redis_client, actor="race-test")
    lg.load_policy(POLICY, by="test", source="test_race")
    rng = random.Random(7)
    specs = [
        (
            f"same-{i}",
            rng.choice(COMBOS),
            rng.choice(("buy", "sell")),
            (q := rng.randint(10, 200), q + rng.randint(1, 20)),
            rng.choice(PRICES),
        )
        for i in range(150)
    ]
    # Four processes send every id with one qty, two with another; all in the same order.
    variants = (0, 0, 0, 0, 1, 1)
    results = run_processes([(redis_url, v, specs) for v in variants], _same_ids_run)

    by_id: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for decisions in results.values():
        assert len(decisions) == len(specs)
        for d in decisions:
            by_id[d[0]].append(d)
    accepted: dict[str, int] = {}
    for oid, decisions in by_id.items():
        first = [d for d in decisions if not d[9] and d[3] is not Reason.DUPLICATE_ORDER_ID]
        assert len(first) == 1, (oid, decisions)
        (winner,) = first
        for d in decisions:
            if d[1] == winner[1]:
                assert d[2:9] == winner[2:9], (oid, d, winner)
            else:
                assert (d[2], d[3], d[9]) == (False, Reason.DUPLICATE_ORDER_ID, False), (oid, d)
        assert sum(d[9] for d in decisions) == variants.count(winner[1]) - 1
        if winner[2]:
            accepted[oid] = winner[8]
    assert accepted and len(accepted) < len(specs)

    firm = aggregates(redis_client, lg.keys, FIRM)[f"firm:{FIRM}"]
    assert (firm.n, firm.ob + firm.os) == (len(accepted), sum(accepted.values()))
    assert lg.check().ok
    for oid, amount in accepted.items():
        r = lg.release(oid, "end of test")
        assert (r.reason, r.released, r.already_closed) == (Reason.OK, amount, False)
    firm = aggregates(redis_client, lg.keys, FIRM)[f"firm:{FIRM}"]
    assert (firm.ob, firm.os, firm.n) == (0, 0, 0)
