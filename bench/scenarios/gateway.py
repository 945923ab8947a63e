"""Scenario 5: ``POST /v1/orders`` through two gunicorn instances of the gateway.

The instances are started as ``gateway.run`` starts them (gunicorn with
``gateway/gunicorn.conf.py``: 2 gthread workers of 4 threads each, kept-alive
connections, production settings including the 50 ms Redis timeout and the
token cache) against the benchmark's server, with an order-entry token
created in the token store. Each repetition measures, one right after the
other and rotating which goes first:

- saturation: one wrk (:mod:`bench.wrk`) per instance, 16 kept-alive
  connections each, every request a new order; answers/s, and the gateway
  processes' CPU per answer (``/proc``). Beside it, the library path from
  the 8 benchmark worker processes (decisions/s).

Then, at half the median saturation measured:

- fixed rate, open-loop, from 2 processes (:mod:`bench.loadgen`, one
  kept-alive connection each, one instance each): p50/p99/p99.9 from each
  request's due time, so a late answer is charged to the requests it
  delayed. Beside it, sequential library ``reserve`` latency in this process.

With ``LEDGER_BENCH_GATEWAY_BASELINE=DIR`` (a checkout of an earlier commit,
e.g. ``git worktree add ../old COMMIT``), that checkout's gateway is started
too, as its own ``gateway.run`` started it (2 instances x 3 workers, its own
gunicorn config), and saturated in the same rotation: before and after,
side by side, each against the library measured beside it.

wrk is found or installed (:func:`bench.wrk.find_wrk`); without it the
saturation falls back to the Python load of :func:`bench.loadgen.closed_loop`
from the 8 worker processes, and the result says so. If the gateway cannot
be imported or started, the scenario is skipped and says why.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import at, percentiles, ratio_of, summarize, timed_calls
from bench.loadgen import closed_loop, fixed_rate
from bench.scenarios import Context, row
from bench.workers import throughput
from bench.workload import FirmShape, orders
from bench.wrk import find_wrk, run_wrk
from ledger.store.embedded import free_port

TITLE = "The gateway"

FULL = FirmShape("FULL", controls="full", traders=64, accounts=8)
PREFIX = "gw"
#: The gateways this run starts and the token it makes share it; nothing outlives the run.
TOKEN_SECRET = secrets.token_urlsafe(32)
WORKERS_PER_INSTANCE = 2
THREADS_PER_WORKER = 4
#: wrk connections per instance: two per worker thread, so no thread waits for work.
WRK_CONNECTIONS = 16
LOAD_PROCS = 8
#: A checkout whose gateway is measured beside this one (before and after).
BASELINE_ENV = "LEDGER_BENCH_GATEWAY_BASELINE"
#: Workers per instance ``gateway.run`` started before gthread workers (sync, one thread).
BASELINE_WORKERS = 3
#: Targets of the gateway (issue "a gateway that keeps up with its ledger").
TARGET_SATURATION_RATIO = 0.5
TARGET_P99_US = 3000.0


def _conf() -> Path:
    """The gateway's gunicorn config; raises if the gateway is not there."""
    import gateway  # noqa: F401, PLC0415
    from gateway.run import CONF  # noqa: PLC0415 - optional part of the project

    if not Path(CONF).is_file():
        raise FileNotFoundError(f"{CONF} is missing")
    return Path(CONF)


def _two(
    start: Callable[[int], subprocess.Popen[bytes]],
) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    """Two instances started by ``start(port)`` on free ports, both answering, or none left."""
    from gateway.run import stop, wait_ready  # noqa: PLC0415 - optional part

    bases, procs = [], []
    try:
        for _ in range(2):
            port = free_port()
            procs.append(start(port))
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs, strict=True):
            wait_ready(base, proc, timeout_s=60.0)
    except Exception:
        stop(procs)
        raise
    return bases, procs


def _start(ctx: Context) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    from gateway.run import launch  # noqa: PLC0415 - optional part

    return _two(
        lambda port: launch(
            ctx.url,
            bind=f"127.0.0.1:{port}",
            workers=WORKERS_PER_INSTANCE,
            threads=THREADS_PER_WORKER,
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


def _start_baseline(ctx: Context, root: Path) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    """Two instances of the gateway of the checkout at ``root``, with its own code and config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEDGER_GATEWAY_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    return _two(
        lambda port: subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(root / "gateway/gunicorn.conf.py")],
            cwd=root,
            env={
                **env,
                "PYTHONPATH": str(root),
                "LEDGER_REDIS_URL": ctx.url,
                "LEDGER_PREFIX": PREFIX,
                "LEDGER_GATEWAY_WORKERS": str(BASELINE_WORKERS),
                "LEDGER_GATEWAY_BIND": f"127.0.0.1:{port}",
                "LEDGER_GATEWAY_NAME": f"bench-baseline-{port}",
                "LEDGER_GATEWAY_LOG_LEVEL": "warning",
                "LEDGER_ACTOR": "bench-baseline",
                "LEDGER_TOKEN_SECRET": TOKEN_SECRET,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
    )


def _baseline_commit(root: Path) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
    )
    return out.stdout.strip() or root.name


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

    baseline: tuple[list[str], list[Any]] | None = None
    root = os.environ.get(BASELINE_ENV)
    try:
        if root:
            ctx.progress.say(f"starting two baseline gateway instances from {root}")
            baseline = _start_baseline(ctx, Path(root).resolve())
        out = _measure(ctx, lg, bases, token, procs, baseline)
        if root:
            out["baseline"]["commit"] = _baseline_commit(Path(root))
        return out
    finally:
        stop(procs + (baseline[1] if baseline else []))


def _cpu_s(pids: list[int]) -> float:
    """User and system CPU seconds of ``pids`` so far (gone processes count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _tree(pids: list[int]) -> list[int]:
    """``pids`` and their children (a gunicorn master and its workers)."""
    out = list(pids)
    for pid in pids:
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                out += [int(x) for x in children.read_text().split()]
            except OSError:
                continue
    return out


def _redis_cpu_s(ctx: Context) -> float:
    info = ctx.client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _library_saturation(
    ctx: Context, paths: list[Any], tag: str, seconds: float
) -> tuple[float, int]:
    """Decisions/s of the 8 worker processes sending back to back, and how many."""
    calls = [
        {
            "kind": "reserve",
            "url": ctx.url,
            "prefix": PREFIX,
            "paths": paths[w::LOAD_PROCS],
            "tag": f"{tag}w{w}",
            "seconds": seconds,
        }
        for w in range(LOAD_PROCS)
    ]
    results = ctx.pool.run(throughput, calls)
    span = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    count = sum(r["count"] for r in results)
    return float(count / span), int(count)


def _python_saturation(
    ctx: Context, bases: list[str], token: str, paths: list[Any], tag: str, seconds: float
) -> dict[str, Any]:
    calls = [
        {
            "base": bases[w % 2],
            "token": token,
            "paths": paths[w::LOAD_PROCS],
            "tag": f"{tag}w{w}",
            "seconds": seconds,
        }
        for w in range(LOAD_PROCS)
    ]
    results = ctx.pool.run(closed_loop, calls)
    span = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    statuses: dict[str, int] = defaultdict(int)
    for r in results:
        for code, count in r["statuses"].items():
            statuses[code] += count
    count = sum(r["count"] for r in results)
    non_2xx = sum(c for code, c in statuses.items() if not code.startswith("2"))
    return {"per_s": count / span, "requests": count, "non_2xx": non_2xx, "errors": 0}


def _saturate(
    wrk: str | None, ctx: Context, bases: list[str], token: str, paths: list[Any], tag: str
) -> dict[str, Any]:
    seconds = ctx.mode.gateway_seconds
    if wrk is None:
        return _python_saturation(ctx, bases, token, paths, tag, seconds)
    r = run_wrk(wrk, bases, token, paths, tag, seconds=seconds, connections=WRK_CONNECTIONS)
    r["errors"] = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return r


def _measure(
    ctx: Context,
    lg: Any,
    bases: list[str],
    token: str,
    procs: list[Any],
    baseline: tuple[list[str], list[Any]] | None = None,
) -> dict[str, Any]:
    mode = ctx.mode
    paths = FULL.paths()
    seconds = mode.gateway_seconds
    # The smoke run (the test suite's) uses wrk if it is there but installs nothing.
    wrk = find_wrk(install=mode.name != "smoke")
    sat: dict[str, list[float]] = defaultdict(list)
    #: CPU per answer of the gateway processes and Redis, per decision of the library
    #: processes and Redis: what each costs the machine, whatever else runs on it.
    machine: dict[str, list[float]] = defaultdict(list)
    cpu_us: list[float] = []
    non_2xx = errors = answers = 0
    statuses: dict[str, int] = defaultdict(int)
    lat: dict[str, dict[str, list[float]]] = {
        "gateway": defaultdict(list),
        "library": defaultdict(list),
    }
    gateway_pids = _tree([p.pid for p in procs])
    if wrk is not None:
        # Every worker connects, subscribes and reads its routes and the token first.
        run_wrk(wrk, bases, token, paths, "warm", seconds=1, connections=WRK_CONNECTIONS)
    status_5xx = 0
    base_pids = _tree([p.pid for p in baseline[1]]) if baseline else []
    base_cpu_us: list[float] = []
    base_non_2xx = 0
    if baseline and wrk is not None:
        run_wrk(wrk, baseline[0], token, paths, "bwarm", seconds=1, connections=WRK_CONNECTIONS)
    order = ["gateway", "library"] + (["baseline"] if baseline else [])
    for rep in range(mode.proc_reps):
        ctx.progress.say(f"saturation, repetition {rep + 1}/{mode.proc_reps}")
        for side in order[rep % len(order) :] + order[: rep % len(order)]:
            if side == "library":
                pool_pids = sorted(ctx.pool.pids)
                before, redis_before = _cpu_s(pool_pids), _redis_cpu_s(ctx)
                per_s, count = _library_saturation(ctx, paths, f"lib{rep}", seconds)
                spent = _cpu_s(pool_pids) - before + _redis_cpu_s(ctx) - redis_before
                sat["library"].append(per_s)
                machine["library"].append(spent / max(1, count) * 1e6)
            elif side == "baseline" and baseline:
                before = _cpu_s(base_pids)
                r = _saturate(wrk, ctx, baseline[0], token, paths, f"base{rep}")
                base_cpu_us.append((_cpu_s(base_pids) - before) / max(1, r["requests"]) * 1e6)
                sat["baseline"].append(r["per_s"])
                base_non_2xx += r["non_2xx"]
            else:
                before, redis_before = _cpu_s(gateway_pids), _redis_cpu_s(ctx)
                r = _saturate(wrk, ctx, bases, token, paths, f"sat{rep}")
                gateway_s = _cpu_s(gateway_pids) - before
                redis_s = _redis_cpu_s(ctx) - redis_before
                cpu_us.append(gateway_s / max(1, r["requests"]) * 1e6)
                machine["gateway"].append((gateway_s + redis_s) / max(1, r["requests"]) * 1e6)
                sat["gateway"].append(r["per_s"])
                non_2xx += r["non_2xx"]
                errors += r["errors"]
                status_5xx += r.get("status_5xx", 0)
                answers += r["requests"]
    rate = max(10.0, 0.5 * statistics.median(sat["gateway"]))
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
        results = ctx.pool.run(fixed_rate, calls)
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
    fixed_non_2xx = sum(c for code, c in statuses.items() if not code.startswith("2"))
    load = "wrk " + _wrk_version(wrk) if wrk else "Python (bench.loadgen; wrk not found)"
    out: dict[str, Any] = {
        "instances": len(bases),
        "workers_per_instance": WORKERS_PER_INSTANCE,
        "threads_per_worker": THREADS_PER_WORKER,
        "saturation_load": load,
        "wrk_connections_per_instance": WRK_CONNECTIONS if wrk else None,
        "library_processes": LOAD_PROCS,
        "fixed_rate_per_s": rate,
        "fixed_rate_load": "bench.loadgen.fixed_rate: 2 processes, open-loop, keep-alive",
        "saturation_answers": answers,
        "saturation_non_2xx": non_2xx,
        "saturation_5xx": status_5xx,
        "saturation_socket_errors": errors,
        "fixed_rate_statuses": dict(statuses),
        "saturation_per_s": summarize(sat["gateway"], "1/s"),
        "gateway_cpu_us_per_answer": summarize(cpu_us, "µs"),
        "library_8_procs_per_s": summarize(sat["library"], "1/s"),
        "machine_cpu_us_per_answer": summarize(machine["gateway"], "µs"),
        "library_machine_cpu_us_per_decision": summarize(machine["library"], "µs"),
        "saturation_vs_library_by_cpu": ratio_of(machine["library"], machine["gateway"]),
        "saturation_vs_library": ratio_of(sat["gateway"], sat["library"]),
        "latency_us": {q: summarize(v, "µs") for q, v in lat["gateway"].items()},
        "library_latency_us": {q: summarize(v, "µs") for q, v in lat["library"].items()},
        "latency_vs_library": {
            q: ratio_of(lat["gateway"][q], lat["library"][q]) for q in ("p50", "p99", "p999")
        },
    }
    sat_ratio = out["saturation_vs_library"]["median"]
    p99 = out["latency_us"]["p99"]["median"]
    out["targets"] = {
        "saturation_vs_library": {
            "target": TARGET_SATURATION_RATIO,
            "met": sat_ratio >= TARGET_SATURATION_RATIO and non_2xx == 0 and errors == 0,
        },
        "p99_at_half_saturation_us": {
            "target": TARGET_P99_US,
            "met": p99 <= TARGET_P99_US and fixed_non_2xx == 0,
        },
    }
    if baseline:
        out["baseline"] = {
            "instances": len(baseline[0]),
            "workers_per_instance": BASELINE_WORKERS,
            "saturation_per_s": summarize(sat["baseline"], "1/s"),
            "cpu_us_per_answer": summarize(base_cpu_us, "µs"),
            "saturation_vs_library": ratio_of(sat["baseline"], sat["library"]),
            "non_2xx": base_non_2xx,
            "this_vs_baseline": ratio_of(sat["gateway"], sat["baseline"]),
        }
    out["rows"] = [
        row(
            f"gateway saturation, answers/s (2 instances x {WORKERS_PER_INSTANCE} workers x "
            f"{THREADS_PER_WORKER} threads, {load})",
            out["saturation_per_s"],
            vs=f"library, {LOAD_PROCS} processes",
            ratio=out["saturation_vs_library"],
            note=f"target >= {TARGET_SATURATION_RATIO}x; non-2xx answers: {non_2xx} of "
            f"{answers} ({status_5xx} 5xx); socket errors: {errors}",
        ),
        row(
            "machine CPU per answer at saturation: gateway processes and Redis",
            out["machine_cpu_us_per_answer"],
            vs=f"library: its {LOAD_PROCS} processes and Redis, per decision",
            ratio=out["saturation_vs_library_by_cpu"],
            note="ratio: library CPU / gateway CPU, the saturation ratio of a machine "
            "running nothing else",
        ),
        row(
            "gateway CPU per answer at saturation (gunicorn processes)",
            out["gateway_cpu_us_per_answer"],
        ),
        row(
            f"gateway at {rate:.0f}/s (half saturation), p50",
            out["latency_us"]["p50"],
            vs="library reserve p50",
            ratio=out["latency_vs_library"]["p50"],
        ),
        row(
            f"gateway at {rate:.0f}/s (half saturation), p99",
            out["latency_us"]["p99"],
            vs="library reserve p99",
            ratio=out["latency_vs_library"]["p99"],
            note=f"target <= {TARGET_P99_US / 1000:.0f} ms; non-2xx answers: {fixed_non_2xx}",
        ),
        row(
            f"gateway at {rate:.0f}/s (half saturation), p99.9",
            out["latency_us"]["p999"],
            vs="library reserve p99.9",
            ratio=out["latency_vs_library"]["p999"],
        ),
    ]
    if baseline:
        b = out["baseline"]
        out["rows"][1:1] = [
            row(
                f"baseline gateway saturation, answers/s ({BASELINE_ENV}, 2 instances x "
                f"{BASELINE_WORKERS} workers, its own config)",
                b["saturation_per_s"],
                vs=f"library, {LOAD_PROCS} processes",
                ratio=b["saturation_vs_library"],
                note=f"non-2xx answers: {base_non_2xx}",
            ),
            row(
                "gateway saturation against the baseline's",
                out["saturation_per_s"],
                vs="baseline gateway",
                ratio=b["this_vs_baseline"],
            ),
            row("baseline gateway CPU per answer at saturation", b["cpu_us_per_answer"]),
        ]
    return out


def _wrk_version(wrk: str) -> str:
    try:
        text = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    words = (text.stdout + text.stderr).split()
    return words[1] if len(words) > 1 and words[0] == "wrk" else ""
