"""Scenario 3: the ledger from Python.

Sequential: one process alternates a block of PINGs and a block of
``reserve`` calls (all controls) on the same client, timing each call;
p50/p99/p99.9 per block, ratio to the PING block beside it.

Processes: 1, 2, 4 and 8 processes run back to back, all starting at the
same instant: PING, ``reserve``, and the benchmark's pipelined reserve
(50 orders per round trip, each still its own atomic script call).
Total calls/s over the span from the first start to the last finish.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.harness import at, percentiles, ratio_of, server_cost, summarize, timed_calls
from bench.scenarios import Context, row
from bench.workers import throughput
from bench.workload import FirmShape, capture_reserve, orders

TITLE = "The ledger from Python"

FULL = FirmShape("FULL", controls="full", traders=64, accounts=8)
BATCH = 50


def sequential(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    n = mode.latency_calls
    lg = ctx.ledger("s3", FULL)
    ping = lg.redis.ping
    pct: dict[str, dict[str, list[float]]] = {
        "ping": defaultdict(list),
        "reserve": defaultdict(list),
    }
    rates: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, list[float]] = defaultdict(list)
    for rep in range(mode.reps):
        ctx.progress.say(f"sequential, repetition {rep + 1}/{mode.reps}")
        batch = list(orders(FULL, n, f"seq{rep}"))
        blocks = {
            "ping": lambda _i: ping(),
            "reserve": at(lg.reserve, batch),
        }
        for name in list(blocks) if rep % 2 == 0 else list(reversed(blocks)):
            got: list[tuple[list[int], float]] = []

            def block(fn: Any = blocks[name], got: list[tuple[list[int], float]] = got) -> None:
                got.append(timed_calls(fn, n))

            if name == "reserve":
                parts["server"].append(server_cost(ctx.client, block)[0])
            else:
                block()
            samples, wall = got[0]
            for q, v in percentiles(samples).items():
                pct[name][q].append(v)
            rates[name].append(n / wall)
        # The facade's own Python work before the script call (validation, routing,
        # arguments), timed with the call itself intercepted.
        prep = list(orders(FULL, n, f"prep{rep}"))
        samples, _ = timed_calls(at(lambda o: capture_reserve(lg, o), prep), n)
        parts["client_prep"].append(percentiles(samples)["p50"])
    out: dict[str, Any] = {"samples_per_block": n}
    for name in pct:
        out[name] = {q: summarize(v, "µs") for q, v in pct[name].items()}
        out[name]["per_s"] = summarize(rates[name], "1/s")
    out["ratios"] = {q: ratio_of(pct["reserve"][q], pct["ping"][q]) for q in ("p50", "p99", "p999")}
    # Where the p50 goes: a round trip (PING), Redis CPU of the script, the facade's Python.
    out["parts_us"] = {
        "server": summarize(parts["server"], "µs"),
        "client_prep_p50": summarize(parts["client_prep"], "µs"),
        # Approximate (p50s and a mean mixed): redis-py's encoding of the call and parsing of
        # the reply, the Decision, and whatever else the round trip does not explain.
        "remainder": summarize(
            [
                total - ping - server - prep
                for total, ping, server, prep in zip(
                    pct["reserve"]["p50"],
                    pct["ping"]["p50"],
                    parts["server"],
                    parts["client_prep"],
                    strict=True,
                )
            ],
            "µs",
        ),
    }
    return out


def processes(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    lg = ctx.ledger("s3p", FULL)
    paths = FULL.paths()
    pool = ctx.pool
    out: dict[str, Any] = {}
    for n in mode.procs:
        per_kind: dict[str, list[float]] = defaultdict(list)
        for rep in range(mode.proc_reps):
            ctx.progress.say(f"{n} process(es), repetition {rep + 1}/{mode.proc_reps}")
            for kind in ("ping", "reserve", "pipelined"):
                calls = [
                    {
                        "kind": kind,
                        "url": ctx.url,
                        "prefix": "s3p",
                        "tag": f"{kind}{n}r{rep}w{w}",
                        "paths": paths[w::n] or paths,
                        "seconds": mode.proc_seconds,
                        "batch": BATCH,
                    }
                    for w in range(n)
                ]
                results = pool.run(throughput, calls)
                span = max(r["t1"] for r in results) - min(r["t0"] for r in results)
                per_kind[kind].append(sum(r["count"] for r in results) / span)
        out[str(n)] = {
            "ping_per_s": summarize(per_kind["ping"], "1/s"),
            "reserve_per_s": summarize(per_kind["reserve"], "1/s"),
            "pipelined_per_s": summarize(per_kind["pipelined"], "1/s"),
            "pipelined_per_s_per_process": summarize([v / n for v in per_kind["pipelined"]], "1/s"),
            "reserve_vs_ping": ratio_of(per_kind["reserve"], per_kind["ping"]),
            "pipelined_vs_reserve": ratio_of(per_kind["pipelined"], per_kind["reserve"]),
        }
    lg.redis.close()
    return out


def run(ctx: Context) -> dict[str, Any]:
    seq = sequential(ctx)
    procs = processes(ctx)
    rows = [
        row(
            "sequential reserve p50 (all controls)",
            seq["reserve"]["p50"],
            vs="PING round trip p50",
            ratio=seq["ratios"]["p50"],
        ),
        row(
            "sequential reserve p99",
            seq["reserve"]["p99"],
            vs="PING p99",
            ratio=seq["ratios"]["p99"],
        ),
        row(
            "sequential reserve p99.9",
            seq["reserve"]["p999"],
            vs="PING p99.9",
            ratio=seq["ratios"]["p999"],
        ),
        row("sequential decisions/s, one process", seq["reserve"]["per_s"]),
        row("of a sequential reserve: Redis CPU of the script (mean)", seq["parts_us"]["server"]),
        row(
            "of a sequential reserve: the facade's Python work before the call, p50",
            seq["parts_us"]["client_prep_p50"],
            note="validation, routing, arguments",
        ),
        row(
            "of a sequential reserve: the rest beyond PING, script and that work (approx.)",
            seq["parts_us"]["remainder"],
            note="redis-py encoding and parsing, the Decision",
        ),
    ]
    for n, fig in procs.items():
        rows.append(
            row(
                f"{n} process(es): reserve decisions/s, total",
                fig["reserve_per_s"],
                vs=f"PING/s with {n} process(es)",
                ratio=fig["reserve_vs_ping"],
            )
        )
    for n, fig in procs.items():
        rows.append(
            row(
                f"{n} process(es): pipelined reserve decisions/s per process (batches of {BATCH})",
                fig["pipelined_per_s_per_process"],
                vs="one-by-one reserve, total",
                ratio=fig["pipelined_vs_reserve"],
            )
        )
    return {"sequential": seq, "processes": procs, "batch": BATCH, "rows": rows}
