"""``python -m bench.soak [--minutes M] [--rate R] [--retention 60s]``: bounded memory, shown.

Two private servers (``ledger.embedded``), the same policy but for
``retention.closed_orders``: ``--retention`` on one, ``never`` on the other.
One driver process per server sends the same order lives at the same steady
rate, each order through its whole life by its number (i % 10):

* 0-3: two partial fills, then the rest: filled;
* 4-6: a partial fill, then released (cancel confirmed);
* 7-8: GTD, a partial fill, then nothing: the ledger expires it (each
  decision retires a few due orders, a sweep every 10 s the rest);
* 9: IOC, a partial fill: the ledger releases the rest at that fill.

The main process samples both servers every ``--sample-s`` seconds: Redis
``used_memory``, the audit stream's length (its backlog: no archiver runs
here, so the stream is held at ``--audit-maxlen``), open and retained
closed orders. Then, on a third fresh server, it measures bytes per open
(DAY) order and per retained closed (filled) order with the audit stream
emptied. Writes ``soak.json``, ``soak.md`` and ``soak.png`` to ``--out``.
This is a long measurement, not part of the test suite.
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing as mp
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from ledger import Ledger, Order, parse_policy
from ledger.policy.durations import parse_duration_ms
from ledger.policy.lifecycle import format_ms
from ledger.store.embedded import EmbeddedRedis

RESULTS = Path(__file__).resolve().parent / "results"
FIRM = "SOAK"
ACCOUNTS = [f"A{i}" for i in range(4)]
TRADERS = [f"T{i}" for i in range(8)]
#: Seconds after the reserve at which each step of a life happens.
GTD_LIFE_S = 5.0
SWEEP_EVERY_S = 10.0


def policy(retention: str) -> dict[str, Any]:
    return {
        "version": 1,
        "currency": "USD",
        "minor_units": 2,
        "retention": {"closed_orders": retention},
        "time_in_force": {"ioc_grace": "2s"},
        "firms": [
            {
                "id": FIRM,
                "desks": [{"id": "D0", "accounts": [{"id": a} for a in ACCOUNTS]}],
            }
        ],
        "strategies": [{"id": "S0", "accounts": ACCOUNTS}],
        "traders": [{"id": t, "accounts": ACCOUNTS, "strategies": ["S0"]} for t in TRADERS],
    }


def _order(i: int, now_ms: int) -> Order:
    kind = i % 10
    tif, expire = "DAY", None
    if kind in (7, 8):
        tif, expire = "GTD", format_ms(now_ms + int(GTD_LIFE_S * 1000))
    elif kind == 9:
        tif = "IOC"
    return Order(
        f"o{i}",
        TRADERS[i % len(TRADERS)],
        "S0",
        ACCOUNTS[i % len(ACCOUNTS)],
        "XYZ",
        "buy" if i % 2 else "sell",
        "10",
        "100",
        time_in_force=tif,
        expire_time=expire,
    )


def _steps(i: int) -> list[tuple[float, str, str]]:
    """(seconds after the reserve, action, qty) of order i's life."""
    kind = i % 10
    if kind <= 3:
        return [(1.0, "fill", "4"), (3.0, "fill", "6")]
    if kind <= 6:
        return [(1.0, "fill", "3"), (4.0, "release", "")]
    if kind <= 8:
        return [(1.0, "fill", "2")]
    return [(0.5, "fill", "5")]


def drive(
    url: str, rate: float, seconds: float, audit_maxlen: int, done: Any, refused: Any
) -> None:
    """Reserve ``rate`` orders a second for ``seconds``, each through its life."""
    lg = Ledger.from_url(url, timeout_s=30.0, actor="soak", audit_maxlen=audit_maxlen)
    lg.prefetch_routes()
    start = time.monotonic()
    pending: list[tuple[float, int, int, str, str]] = []
    i, seq, last_sweep = 0, 0, start
    server_ms0 = _server_ms(lg.redis)
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= seconds and not pending:
            break
        while elapsed < seconds and i < rate * elapsed:
            # The server's time now, not at the top of the loop: a stalled driver
            # catches up in a burst, and a GTD expire time must stay ahead of it.
            o = _order(i, server_ms0 + int((time.monotonic() - start) * 1000))
            d = lg.reserve(o)
            if not d.accepted:
                refused.value += 1
                print(f"o{i}: {d.reason.value} {d.message}", flush=True)
            for at, action, qty in _steps(i):
                seq += 1
                heapq.heappush(pending, (now + at, seq, i, action, qty))
            i += 1
            done.value = i
        while pending and pending[0][0] <= now:
            _, _, j, action, qty = heapq.heappop(pending)
            oid, account = f"o{j}", ACCOUNTS[j % len(ACCOUNTS)]
            if action == "fill":
                lg.fill(oid, f"f{qty}", qty, "100", account=account)
            else:
                lg.release(oid, "cancelled", account=account)
        if now - last_sweep >= SWEEP_EVERY_S:
            lg.sweep()
            last_sweep = now
        time.sleep(0.0005)
    time.sleep(GTD_LIFE_S + 1)
    lg.sweep()


def _server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()  # type: ignore[misc]
    return int(seconds) * 1000 + int(micros) // 1000


def sample(client: redis.Redis, lg: Ledger, fixed: int) -> dict[str, int]:
    """One reading; ``fixed``: the keys before any order (policy, routes); the firm's
    state keys the orders create are counted here."""
    k = lg.keys
    pipe = client.pipeline(transaction=False)
    pipe.info("memory")
    pipe.dbsize()
    pipe.xlen(k.audit(FIRM))
    pipe.zcard(k.open_index(FIRM))
    pipe.zcard(k.expiry(FIRM))
    pipe.exists(k.agg(FIRM), k.positions(FIRM), k.open_index(FIRM), k.expiry(FIRM), k.audit(FIRM))
    mem, keys, audit, open_entries, due, state_keys = pipe.execute()
    fixed += int(state_keys)
    # Four index entries per open order; the rest of the keys are orders and fixed keys.
    open_orders = int(open_entries) // 4
    return {
        "used_memory": int(mem["used_memory"]),
        "keys": int(keys),
        "audit_len": int(audit),
        "open_orders": open_orders,
        "closed_kept": max(int(keys) - fixed - open_orders, 0),
        "due_indexed": int(due),
    }


def per_order_bytes(n: int) -> dict[str, float]:
    """Bytes per open DAY order and per retained filled order, audit stream emptied."""
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        lg = Ledger(client, actor="soak")
        lg.load_policy(parse_policy(policy("2d"), source="soak"), by="bench")
        lg.prefetch_routes()
        audit = lg.keys.audit(FIRM)

        def settled() -> int:
            client.xtrim(audit, maxlen=0, approximate=False)
            client.memory_purge()
            return int(client.info("memory")["used_memory"])

        base = settled()
        now = _server_ms(client)
        batch = [_order(i * 10, now) for i in range(n)]  # kind 0: DAY
        for at in range(0, n, 500):
            lg.reserve_many(batch[at : at + 500])
        opened = settled()
        for o in batch:
            lg.fill(o.order_id, "f1", "4", "100", account=o.account)
            lg.fill(o.order_id, "f2", "6", "100", account=o.account)
        closed = settled()
        client.close()
    return {
        "orders": n,
        "bytes_per_open_order": (opened - base) / n,
        "bytes_per_retained_closed_order": (closed - base) / n,
    }


def _slope(points: list[tuple[float, int]]) -> float:
    """Least-squares bytes per second."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for name, style in (("on", "-"), ("off", "--")):
        rows = result["samples"][name]
        t = [r["t"] / 60 for r in rows]
        label = f"retention {result['retention'] if name == 'on' else 'never'}"
        top.plot(t, [r["used_memory"] / 2**20 for r in rows], style, label=label)
        bottom.plot(t, [r["audit_len"] / 1000 for r in rows], style, label=label)
    top.set_ylabel("Redis used_memory (MiB)")
    top.set_title(f"Soak: {result['rate']:g} orders/s, whole lives, side by side")
    top.legend()
    bottom.set_ylabel("audit stream backlog (k records)")
    bottom.set_xlabel("minutes")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(result: dict[str, Any]) -> str:
    on, off = result["summary"]["on"], result["summary"]["off"]
    per = result["per_order"]
    mib = 2**20
    return "\n".join(
        [
            "# Soak: bounded memory with retention",
            "",
            f"`{result['command']}` on {result['date']}, {result['minutes']:g} min per side.",
            f"Machine: {result['machine']}. Server: {result['server']}. Code: {result['code']}.",
            "",
            "Two servers, the same policy but for `retention.closed_orders`, driven at the same "
            "steady rate by one process each: every order through its whole life (reserve, "
            "partial fills, then filled, released, released by the ledger at an IOC's first "
            "fill, or expired by the ledger as GTD). No archiver runs; the audit stream is "
            f"held at `--audit-maxlen` {result['audit_maxlen']:,} records.",
            "",
            "| | retention " + result["retention"] + " | retention never |",
            "| --- | --- | --- |",
            f"| orders driven | {on['orders']:,} | {off['orders']:,} |",
            f"| of which refused at reserve | {on['refused']:,} | {off['refused']:,} |",
            f"| achieved rate, orders/s | {on['rate']:.0f} | {off['rate']:.0f} |",
            f"| used_memory at the end, MiB | {on['end_memory'] / mib:.1f} | "
            f"{off['end_memory'] / mib:.1f} |",
            f"| used_memory over the last quarter, MiB (min-max) | "
            f"{on['plateau'] / mib:.1f} ({on['q_min'] / mib:.1f}-{on['q_max'] / mib:.1f}) | "
            f"{off['plateau'] / mib:.1f} ({off['q_min'] / mib:.1f}-{off['q_max'] / mib:.1f}) |",
            f"| growth over the second half, KiB/min | {on['slope'] * 60 / 1024:.0f} | "
            f"{off['slope'] * 60 / 1024:.0f} |",
            f"| open orders at the end | {on['open_orders']:,} | {off['open_orders']:,} |",
            f"| closed orders kept at the end | {on['closed_kept']:,} | {off['closed_kept']:,} |",
            f"| audit backlog at the end (records) | {on['audit_len']:,} | {off['audit_len']:,} |",
            "",
            f"Per order, measured apart on a fresh server ({per['orders']:,} orders, audit "
            "stream emptied before each reading):",
            "",
            f"- bytes per open order (DAY: order hash, 4 open-index entries, 1 expiry entry): "
            f"**{per['bytes_per_open_order']:.0f} B**",
            f"- bytes per retained closed order (filled, two fill ids): "
            f"**{per['bytes_per_retained_closed_order']:.0f} B**",
            "",
            "With retention on, memory levels off at about: base + audit bound + open orders "
            "x bytes per open order + rate x retention x bytes per closed order.",
            "",
            "![soak](soak.png)",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=250.0, help="orders per second, each side")
    p.add_argument("--retention", default="60s", help="retention.closed_orders of the 'on' side")
    p.add_argument("--audit-maxlen", type=int, default=200_000)
    p.add_argument("--sample-s", type=float, default=5.0)
    p.add_argument("--per-order", type=int, default=20_000, help="orders of the per-order measure")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    parse_duration_ms(args.retention, "--retention")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = args.minutes * 60
    servers = {"on": EmbeddedRedis().start(), "off": EmbeddedRedis().start()}
    try:
        clients, ledgers, counters, refusals, procs, fixed = {}, {}, {}, {}, {}, {}
        ctx = mp.get_context("spawn")
        for name, server in servers.items():
            clients[name] = redis.Redis.from_url(server.url)
            ledgers[name] = Ledger(clients[name], actor="soak")
            retention = args.retention if name == "on" else "never"
            ledgers[name].load_policy(parse_policy(policy(retention), source="soak"), by="bench")
            counters[name] = ctx.Value("q", 0)
            refusals[name] = ctx.Value("q", 0)
            fixed[name] = int(clients[name].dbsize())
        start = time.monotonic()
        for name, server in servers.items():
            procs[name] = ctx.Process(
                target=drive,
                args=(
                    server.url,
                    args.rate,
                    seconds,
                    args.audit_maxlen,
                    counters[name],
                    refusals[name],
                ),
            )
            procs[name].start()
        samples: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        while any(proc.is_alive() for proc in procs.values()):
            t = time.monotonic() - start
            for name in servers:
                row = sample(clients[name], ledgers[name], fixed[name])
                row["t"], row["orders"] = round(t, 1), int(counters[name].value)
                samples[name].append(row)
            print(
                f"{t:7.0f}s "
                + "  ".join(
                    f"{n}: {samples[n][-1]['orders']:,} orders "
                    f"{samples[n][-1]['used_memory'] / 2**20:.1f} MiB"
                    for n in servers
                ),
                flush=True,
            )
            time.sleep(args.sample_s)
        for name in servers:
            row = sample(clients[name], ledgers[name], fixed[name])
            row["t"], row["orders"] = round(time.monotonic() - start, 1), int(counters[name].value)
            samples[name].append(row)
            assert ledgers[name].check().ok, f"{name}: ledger check failed"
        version = clients["on"].info("server")["redis_version"]
    finally:
        for server in servers.values():
            server.cleanup()
    summary = {}
    for name, rows in samples.items():
        driven = [r for r in rows if r["t"] <= seconds]
        last_q = [r["used_memory"] for r in driven if r["t"] >= 0.75 * seconds] or [0]
        second_half = [(r["t"], r["used_memory"]) for r in driven if r["t"] >= 0.5 * seconds]
        end = rows[-1]
        summary[name] = {
            "orders": end["orders"],
            "refused": int(refusals[name].value),
            "rate": end["orders"] / seconds,
            "end_memory": end["used_memory"],
            "plateau": statistics.median(last_q),
            "q_min": min(last_q),
            "q_max": max(last_q),
            "slope": _slope(second_half),
            "open_orders": end["open_orders"],
            "closed_kept": end["closed_kept"],
            "audit_len": end["audit_len"],
        }
    per = per_order_bytes(args.per_order)
    result = {
        "command": " ".join(["python -m bench.soak", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "minutes": args.minutes,
        "rate": args.rate,
        "retention": args.retention,
        "audit_maxlen": args.audit_maxlen,
        "machine": f"{mp.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "server": f"Redis-compatible {version} (no persistence)",
        "code": _git_head(),
        "summary": summary,
        "per_order": per,
        "samples": samples,
    }
    (out / "soak.json").write_text(json.dumps(result, indent=1))
    plot(result, out / "soak.png")
    (out / "soak.md").write_text(report(result))
    print(report(result))


def _git_head() -> str:
    import subprocess

    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
