"""Scenario 5: ``POST /v1/orders`` through two gunicorn instances of the gateway.

The instances are started as ``gateway.run`` starts them (gunicorn with
``gateway/gunicorn.conf.py``, 3 workers each, production settings including
the 50 ms Redis timeout) against the benchmark's server, with an
order-entry token created in the token store. Load comes from the worker
processes (:mod:`bench.loadgen`), alternating between the two instances:

- saturation: 8 processes send back to back; answers/s. Beside it, the
  library path with the same 8 processes (decisions/s).
- fixed rate: half the measured saturation, open-loop, from 2 processes;
  p50/p99/p99.9 from each request's due time. Beside it, sequential
  library ``reserve`` latency in this process.

If the gateway cannot be imported or started, the scenario is skipped and
says why.
"""

from __future__ import annotations

import secrets
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.harness import at, percentiles, ratio_of, summarize, timed_calls
from bench.loadgen import closed_loop, fixed_rate
from bench.scenarios import Context, row
from bench.workers import throughput
from bench.workload import FirmShape, orders
from ledger.store.embedded import free_port

TITLE = "The gateway"

FULL = FirmShape("FULL", controls="full", traders=64, accounts=8)
PREFIX = "gw"
#: The gateways this run starts and the token it makes share it; nothing outlives the run.
TOKEN_SECRET = secrets.token_urlsafe(32)
WORKERS_PER_INSTANCE = 3
LOAD_PROCS = 8


def _conf() -> Path:
    """The gateway's gunicorn config; raises if the gateway is not there."""
    import gateway  # noqa: F401, PLC0415
    from gateway.run import CONF  # noqa: PLC0415 - optional part of the project

    if not Path(CONF).is_file():
        raise FileNotFoundError(f"{CONF} is missing")
    return Path(CONF)


def _start(ctx: Context) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    from gateway.run import launch, stop, wait_ready  # noqa: PLC0415 - optional part

    bases, procs = [], []
    try:
        for _ in range(2):
            port = free_port()
            procs.append(
                launch(
                    ctx.url,
                    bind=f"127.0.0.1:{port}",
                    workers=WORKERS_PER_INSTANCE,
                    prefix=PREFIX,
                    name=f"bench-gateway-{port}",
                    env={
                        "LEDGER_ACTOR": "bench-gateway",
                        "LEDGER_GATEWAY_LOG_LEVEL": "warning",
                        "LEDGER_TOKEN_SECRET": TOKEN_SECRET,
                    },
                    output=subprocess.DEVNULL,
                )
            )
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs, strict=True):
            wait_ready(base, proc, timeout_s=60.0)
    except Exception:
        stop(procs)
        raise
    return bases, procs


def _token(ctx: Context) -> str:
    from ledger.store.tokens import Role, TokenStore  # noqa: PLC0415

    store = TokenStore(ctx.client, PREFIX, secret=TOKEN_SECRET)
    store.revoke("bench")
    return store.create(Role.ORDER_ENTRY, "bench")


def run(ctx: Context) -> dict[str, Any]:
    try:
        _conf()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return {"skipped": f"gateway not available: {type(exc).__name__}: {exc}", "rows": []}
    lg = ctx.ledger(PREFIX, FULL)
    try:
        token = _token(ctx)
        ctx.progress.say("starting two gateway instances")
        bases, procs = _start(ctx)
    except Exception as exc:  # noqa: BLE001
        return {"skipped": f"gateway not available: {type(exc).__name__}: {exc}", "rows": []}
    from gateway.run import stop  # noqa: PLC0415 - optional part of the project

    try:
        return _measure(ctx, lg, bases, token)
    finally:
        stop(procs)


def _measure(ctx: Context, lg: Any, bases: list[str], token: str) -> dict[str, Any]:
    mode, pool = ctx.mode, ctx.pool
    paths = FULL.paths()
    seconds = mode.gateway_seconds
    sat: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, int] = defaultdict(int)
    lat: dict[str, dict[str, list[float]]] = {
        "gateway": defaultdict(list),
        "library": defaultdict(list),
    }
    for rep in range(mode.proc_reps):
        ctx.progress.say(f"saturation, repetition {rep + 1}/{mode.proc_reps}")
        calls = [
            {
                "base": bases[w % 2],
                "token": token,
                "paths": paths[w::LOAD_PROCS],
                "tag": f"sat{rep}w{w}",
                "seconds": seconds,
            }
            for w in range(LOAD_PROCS)
        ]
        results = pool.run(closed_loop, calls)
        span = max(r["t1"] for r in results) - min(r["t0"] for r in results)
        sat["gateway"].append(sum(r["count"] for r in results) / span)
        for r in results:
            for code, count in r["statuses"].items():
                statuses[code] += count
        calls = [
            {
                "kind": "reserve",
                "url": ctx.url,
                "prefix": PREFIX,
                "paths": paths[w::LOAD_PROCS],
                "tag": f"lib{rep}w{w}",
                "seconds": seconds,
            }
            for w in range(LOAD_PROCS)
        ]
        results = pool.run(throughput, calls)
        span = max(r["t1"] for r in results) - min(r["t0"] for r in results)
        sat["library"].append(sum(r["count"] for r in results) / span)
    rate = max(10.0, 0.5 * min(sat["gateway"]))
    for rep in range(mode.proc_reps):
        ctx.progress.say(f"fixed rate {rate:.0f}/s, repetition {rep + 1}/{mode.proc_reps}")
        calls = [
            {
                "base": bases[w],
                "token": token,
                "paths": paths[w::2],
                "tag": f"fix{rep}w{w}",
                "rate": rate / 2,
                "seconds": seconds,
            }
            for w in range(2)
        ]
        results = pool.run(fixed_rate, calls)
        samples = [x for r in results for x in r["latencies_ns"]]
        for r in results:
            for code, count in r["statuses"].items():
                statuses[code] += count
        for q, v in percentiles(samples).items():
            lat["gateway"][q].append(v)
        batch = list(orders(FULL, mode.latency_calls, f"libseq{rep}"))
        lib_samples, _ = timed_calls(at(lg.reserve, batch), len(batch))
        for q, v in percentiles(lib_samples).items():
            lat["library"][q].append(v)
    out: dict[str, Any] = {
        "instances": len(bases),
        "workers_per_instance": WORKERS_PER_INSTANCE,
        "load_processes": LOAD_PROCS,
        "fixed_rate_per_s": rate,
        "statuses": dict(statuses),
        "saturation_per_s": summarize(sat["gateway"], "1/s"),
        "library_8_procs_per_s": summarize(sat["library"], "1/s"),
        "saturation_vs_library": ratio_of(sat["gateway"], sat["library"]),
        "latency_us": {q: summarize(v, "µs") for q, v in lat["gateway"].items()},
        "library_latency_us": {q: summarize(v, "µs") for q, v in lat["library"].items()},
        "latency_vs_library": {
            q: ratio_of(lat["gateway"][q], lat["library"][q]) for q in ("p50", "p99", "p999")
        },
    }
    non_2xx = sum(c for code, c in statuses.items() if not code.startswith("2"))
    out["rows"] = [
        row(
            f"gateway saturation, answers/s (2 instances x {WORKERS_PER_INSTANCE} workers)",
            out["saturation_per_s"],
            vs=f"library, {LOAD_PROCS} processes",
            ratio=out["saturation_vs_library"],
            note=f"non-2xx answers: {non_2xx}",
        ),
        row(
            f"gateway at {rate:.0f}/s, p50",
            out["latency_us"]["p50"],
            vs="library reserve p50",
            ratio=out["latency_vs_library"]["p50"],
        ),
        row(
            f"gateway at {rate:.0f}/s, p99",
            out["latency_us"]["p99"],
            vs="library reserve p99",
            ratio=out["latency_vs_library"]["p99"],
        ),
        row(
            f"gateway at {rate:.0f}/s, p99.9",
            out["latency_us"]["p999"],
            vs="library reserve p99.9",
            ratio=out["latency_vs_library"]["p999"],
        ),
    ]
    return out
