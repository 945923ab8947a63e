"""``python -m bench [--quick | --smoke] [--only a,b] [--out DIR]``.

Starts a private server on a free loopback port (``ledger.store.embedded``: the
tests' discovery, ``LEDGER_REDIS_SERVER`` first), runs every scenario on it
in one run, and writes ``latest.json``, ``latest.md`` and PNG plots to
``bench/results`` (or ``--out``). Progress goes to stderr. The exit status
is 1 if a scenario failed (the others still run and are written).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

from bench import report
from bench.harness import Progress
from bench.scenarios import ORDER, Context
from bench.settings import MODES
from bench.targets import evaluate
from ledger.store.embedded import EmbeddedRedis, find_server, free_port
from ledger.store.scripts import source

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="under a minute, fewer repetitions")
    size.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest sizes: only proves every scenario runs (tests use it)",
    )
    p.add_argument("--only", default="", help=f"comma-separated scenarios of: {', '.join(ORDER)}")
    p.add_argument("--out", default=str(RESULTS), help="output directory (default bench/results)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    return p.parse_args(argv)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _server(client: Any, binary: str) -> str:
    info = client.info("server")
    name = "Valkey" if "valkey_version" in info else "Redis"
    version = info.get("valkey_version") or info.get("redis_version")
    return f"{name} {version} ({binary})"


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(only) - set(ORDER))
    if unknown:
        print(
            f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(ORDER)}",
            file=sys.stderr,
        )
        return 2
    names = [n for n in ORDER if not only or n in only]
    progress = Progress()
    # A terminated run still stops its server and worker processes (the with/finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = free_port()
    while port == 6379:
        port = free_port()
    binary = find_server()
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    progress.say(f"{mode.name} run; starting {binary} on 127.0.0.1:{port}")
    failed = False
    with EmbeddedRedis(binary=binary, port=port) as server:
        client = redis.Redis.from_url(server.url, socket_timeout=300)
        ctx = Context(mode=mode, url=server.url, client=client, progress=progress)
        scenarios: dict[str, Any] = {}
        try:
            for name in names:
                module = importlib.import_module(f"bench.scenarios.{name}")
                progress.begin(name, module.TITLE)
                t0 = time.monotonic()
                try:
                    result = module.run(ctx)
                except Exception:  # noqa: BLE001 - report it and go on with the others
                    failed = True
                    result = {"error": traceback.format_exc()}
                    progress.say("FAILED\n" + result["error"])
                result["title"] = module.TITLE
                result["seconds"] = time.monotonic() - t0
                if "skipped" in result:
                    progress.say(result["skipped"])
                scenarios[name] = result
            progress.section = ""
            server_name = _server(client, binary)
        finally:
            ctx.close()
            client.close()
    meta: dict[str, Any] = {
        "mode": mode.name,
        "command": "python -m bench"
        + (f" --{mode.name}" if mode.name != "full" else "")
        + (f" --only {args.only}" if only else ""),
        "started_at": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": progress.elapsed_s,
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "server": server_name,
        "python": platform.python_version(),
        "redis_py": _version("redis"),
        "limits": _version("limits"),
        "git": _git(),
        "reserve_sha": hashlib.sha1(source("reserve-n.lua").encode()).hexdigest(),
        "settings": mode.__dict__,
    }
    targets = evaluate(scenarios, mode.name)
    results: dict[str, Any] = {"meta": meta, "scenarios": scenarios, "targets": targets}
    paths = report.write(results, Path(args.out), with_plots=not args.no_plots)
    progress.say(f"done in {progress.elapsed_s:.0f} s; wrote " + ", ".join(str(p) for p in paths))
    for t in targets:
        met = {True: "met", False: "MISSED", None: "not judged"}[t["met"]]
        progress.say(f"target {met}: {t['target']} -> {t['measured']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
