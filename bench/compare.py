"""Old code beside new, in one run on one server: ``python -m bench.compare --base DIR``.

``DIR`` holds the old tree (e.g. ``git archive eed476c | tar -x -C DIR``).
Each repetition runs every measurement of ``bench/compare_worker.py`` once
with the old tree and once with this one, in turn (which goes first
rotates), on the same private server; the five-level floor is measured
right before each side. Ratios are per repetition, then summarized:

- Redis CPU per call against the floor measured beside it (reserve with
  core controls and message windows, reserve with all controls on, fill,
  release), and new over old: both as ``INFO commandstats`` time (the
  issue's measure) and as the server main thread's CPU time (``INFO cpu``),
  which, unlike the former, does not grow while the server waits for a core
  on a busy machine;
- sequential reserve p50 over the PING p50 of the same process, and the
  client's CPU per reserve (and per PING, for scale);
- decisions/s of one firm from N processes, new over old.

Writes ``compare.json`` and ``compare.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from bench.compare_worker import main_thread_cpu_us
from bench.floors import Floors
from bench.harness import summarize
from ledger.store.embedded import EmbeddedRedis, find_server, free_port

HERE = Path(__file__).resolve().parent
NEW = HERE.parent
WORKER = HERE / "compare_worker.py"


def _run(tree: Path, task: str, url: str, prefix: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, str(WORKER), task, url, prefix, str(n)],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _fmt(s: dict[str, Any], unit: str = "") -> str:
    if unit == "x":
        return f"{s['median']:.2f}x ({s['min']:.2f}–{s['max']:.2f})"
    return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f}) {unit}".rstrip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, type=Path, help="the old tree")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--calls", type=int, default=1000, help="calls per server measurement")
    p.add_argument("--seq", type=int, default=2000, help="calls per sequential block")
    p.add_argument("--procs", type=int, default=8)
    p.add_argument("--out", type=Path, default=HERE / "results" / "compare")
    args = p.parse_args(argv)
    sides = {"old": args.base.resolve(), "new": NEW}
    port = free_port()
    while port == 6379:
        port = free_port()
    raw: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    with EmbeddedRedis(binary=find_server(), port=port) as server:
        client = redis.Redis.from_url(server.url, socket_timeout=300)
        version = client.info("server")["redis_version"]
        floors = Floors(client)
        for rep in range(args.reps):
            order = ["old", "new"] if rep % 2 == 0 else ["new", "old"]
            for side in order:
                print(f"repetition {rep + 1}/{args.reps}: {side}", file=sys.stderr)
                tree = sides[side]
                cpu0 = main_thread_cpu_us(client)
                five = floors.server_us("five", args.calls)
                five_cpu = (main_thread_cpu_us(client) - cpu0) / args.calls
                got = _run(tree, "server", server.url, f"c{rep}{side}s", args.calls)
                got["five"], got["five_cpu"] = five, five_cpu
                got.update(_run(tree, "seq", server.url, f"c{rep}{side}q", args.seq))
                got.update(_run(tree, "procs", server.url, f"c{rep}{side}p", args.procs))
                raw[side].append(got)
    out: dict[str, Any] = {
        "when": started.isoformat(timespec="seconds"),
        "server": f"Redis {version}",
        "load_average": [load_before, os.getloadavg()],
        "base": str(sides["old"]),
        "args": {k: str(v) for k, v in vars(args).items()},
        "raw": raw,
        "summary": {},
    }
    rows = []

    def per_rep(side: str, fn: Any) -> list[float]:
        return [fn(r) for r in raw[side]]

    def add(name: str, unit: str, fn: Any) -> None:
        vals = {side: summarize(per_rep(side, fn), unit) for side in ("old", "new")}
        out["summary"][name] = vals
        rows.append((name, _fmt(vals["old"], unit), _fmt(vals["new"], unit)))

    for key, label in (
        ("reserve", "reserve, core controls and message windows"),
        ("reserve_all", "reserve, all controls on"),
        ("fill", "fill (closing the order)"),
        ("release", "release"),
    ):
        add(
            f"Redis CPU per {label}, × the five-level floor", "x", lambda r, k=key: r[k] / r["five"]
        )
    for key, label in (
        ("reserve", "reserve, core controls and message windows"),
        ("reserve_all", "reserve, all controls on"),
        ("fill", "fill (closing the order)"),
        ("release", "release"),
    ):
        add(
            f"server main-thread CPU per {label}, × the floor's",
            "x",
            lambda r, k=key: r[k + "_server_cpu"] / r["five_cpu"],
        )
    add("five-level floor, Redis CPU per call, µs", "µs", lambda r: r["five"])
    add("five-level floor, server main-thread CPU per call, µs", "µs", lambda r: r["five_cpu"])
    add(
        "Redis CPU per reserve (core controls and message windows), µs",
        "µs",
        lambda r: r["reserve"],
    )
    add(
        "sequential reserve p50, × PING p50 of the same process",
        "x",
        lambda r: r["reserve_p50"] / r["ping_p50"],
    )
    add("client CPU per reserve (user + system), µs", "µs", lambda r: r["reserve_cpu"])
    add("client CPU per PING, µs", "µs", lambda r: r["ping_cpu"])
    add(f"one firm from {args.procs} processes, decisions/s", "1/s", lambda r: r["decisions_per_s"])
    gains = {
        "Redis CPU per reserve, new / old": [
            n["reserve"] / o["reserve"] for o, n in zip(raw["old"], raw["new"], strict=True)
        ],
        "server main-thread CPU per reserve, new / old": [
            n["reserve_server_cpu"] / o["reserve_server_cpu"]
            for o, n in zip(raw["old"], raw["new"], strict=True)
        ],
        "server main-thread CPU per reserve with all controls, new / old": [
            n["reserve_all_server_cpu"] / o["reserve_all_server_cpu"]
            for o, n in zip(raw["old"], raw["new"], strict=True)
        ],
        "Redis CPU per reserve with all controls, new / old": [
            n["reserve_all"] / o["reserve_all"] for o, n in zip(raw["old"], raw["new"], strict=True)
        ],
        f"decisions/s from {args.procs} processes, new / old": [
            n["decisions_per_s"] / o["decisions_per_s"]
            for o, n in zip(raw["old"], raw["new"], strict=True)
        ],
        "client CPU per reserve, new / old": [
            n["reserve_cpu"] / o["reserve_cpu"] for o, n in zip(raw["old"], raw["new"], strict=True)
        ],
    }
    out["gains"] = {k: summarize(v, "x") for k, v in gains.items()}
    summary, gain = out["summary"], out["gains"]
    new_of = {name: vals["new"] for name, vals in summary.items()}
    floor = "× the five-level floor"
    # (target, measured, unit, the most it may be); the one gain below is a least.
    spec = [
        (
            "Redis CPU per reserve (core controls and message windows) ≤ 3x the five-level floor",
            new_of[f"Redis CPU per reserve, core controls and message windows, {floor}"],
            "x",
            3,
        ),
        (
            "Redis CPU per reserve, all controls on ≤ 4.5x the floor",
            new_of[f"Redis CPU per reserve, all controls on, {floor}"],
            "x",
            4.5,
        ),
        (
            "Redis CPU per fill ≤ 2x the floor",
            new_of[f"Redis CPU per fill (closing the order), {floor}"],
            "x",
            2,
        ),
        ("Redis CPU per release ≤ 2x the floor", new_of[f"Redis CPU per release, {floor}"], "x", 2),
        (
            "client CPU per reserve ≤ 35 µs",
            new_of["client CPU per reserve (user + system), µs"],
            "µs",
            35,
        ),
        (
            "sequential reserve p50 ≤ 1.8x PING",
            new_of["sequential reserve p50, × PING p50 of the same process"],
            "x",
            1.8,
        ),
    ]
    targets = [(t, v, unit, lambda m, b=bound: m <= b) for t, v, unit, bound in spec]
    targets.append(
        (
            f"one firm from {args.procs} processes ≥ 3x the old code's decisions/s",
            gain[f"decisions/s from {args.procs} processes, new / old"],
            "x",
            lambda m: m >= 3,
        )
    )
    out["targets"] = [
        {"target": t, "measured": v, "met": ok(v["median"])} for t, v, _, ok in targets
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.json").write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    lines = [
        "# Old code beside new (bench/compare.py)",
        "",
        f"`python -m bench.compare --base {args.base} --reps {args.reps}` on "
        f"{out['when']}; {out['server']}, {os.cpu_count()} cores, load average "
        f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after. Median (min–max) "
        f"over {args.reps} repetitions; every ratio per repetition.",
        "",
        "| Measure | old | new |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "| Target | new code, median (min–max) | met |",
        "| --- | --- | --- |",
        *[
            f"| {t} | {_fmt(v, unit)} | {'yes' if ok(v['median']) else '**no**'} |"
            for t, v, unit, ok in targets
        ],
        "",
        "| New over old, per repetition | median (min–max) |",
        "| --- | --- |",
        *[f"| {k} | {_fmt(v, 'x')} |" for k, v in out["gains"].items()],
        "",
    ]
    (args.out / "compare.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
