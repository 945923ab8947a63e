"""wrk, the HTTP load generator the gateway scenario saturates the gateway with.

wrk (C, event loop, keep-alive) costs the machine far less per request than a
Python client, so on a 2-core machine shared by load, gateway and Redis the
figure is the gateway's, not the load generator's. It is found on ``PATH``
(``LEDGER_WRK`` names another binary) or installed from the system's
packages (``apt-get install -y wrk``, Debian and Ubuntu) when running as
root; otherwise the scenario says it is missing.

Every request is a new order (unique id: run tag, wrk thread, counter) over
the firm's paths, as :mod:`bench.loadgen` sends them. The Lua script counts
answers by status class and prints one JSON line at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["find_wrk", "run_wrk", "SCRIPT"]

#: wrk's Lua: one order per request, statuses counted, a JSON summary on stdout.
SCRIPT = r"""
local paths = {PATHS}
local token = "{TOKEN}"
local tag = "{TAG}"
local threads = {}
local n = 0
-- Globals, not locals: done() reads each thread's through thread:get.
counter = 0
non2xx = 0
ok = 0
c4xx = 0
c5xx = 0

function setup(thread)
  n = n + 1
  thread:set("tid", n)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local p = paths[(counter % #paths) + 1]
  local side = (counter % 2 == 0) and "sell" or "buy"
  local body = string.format(
    '{"order_id":"%s-%d-%d","trader":"%s","strategy":"%s","account":"%s",' ..
    '"symbol":"XYZ","side":"%s","qty":"10","price":"100.25"}',
    tag, tid, counter, p[3], p[2], p[1], side)
  return wrk.format("POST", "/v1/orders",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else non2xx = non2xx + 1 end
  if status >= 400 and status < 500 then c4xx = c4xx + 1 end
  if status >= 500 then c5xx = c5xx + 1 end
end

function done(summary, latency, requests)
  local bad, good, e4, e5 = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    good = good + t:get("ok")
    e4 = e4 + t:get("c4xx")
    e5 = e5 + t:get("c5xx")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"ok":%d,"non_2xx":%d,"status_4xx":%d,' ..
    '"status_5xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, good, bad, e4, e5, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


def find_wrk(install: bool = True) -> str | None:
    """The wrk binary: ``LEDGER_WRK``, then ``PATH``, then an apt install when root."""
    named = os.environ.get("LEDGER_WRK")
    if named:
        return named if Path(named).is_file() else None
    found = shutil.which("wrk")
    if found or not install:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        subprocess.run(cmd, env=env, capture_output=True, check=False)
    return shutil.which("wrk")


def _lua(paths: list[tuple[str, str, str]], token: str, tag: str) -> str:
    rows = ", ".join(f'{{"{a}", "{s}", "{t}"}}' for a, s, t in paths)
    return (
        SCRIPT.replace("{PATHS}", "{" + rows + "}").replace("{TOKEN}", token).replace("{TAG}", tag)
    )


def start_wrk(
    wrk: str,
    base: str,
    token: str,
    paths: list[tuple[str, str, str]],
    tag: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
) -> tuple[subprocess.Popen[str], Path]:
    """Start one wrk against ``base``; :func:`finish_wrk` collects its summary."""
    workdir = Path(tempfile.mkdtemp(prefix="ledger-wrk-"))
    script = workdir / "orders.lua"
    script.write_text(_lua(paths, token, tag))
    proc = subprocess.Popen(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, workdir


def finish_wrk(proc: subprocess.Popen[str], workdir: Path) -> dict[str, Any]:
    """Wait for wrk; its JSON summary (requests, duration, status classes, latencies)."""
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise RuntimeError(f"wrk gave no summary (exit {proc.returncode}): {err.strip() or out[-500:]}")


def run_wrk(
    wrk: str,
    bases: list[str],
    token: str,
    paths: list[tuple[str, str, str]],
    tag: str,
    *,
    seconds: float,
    connections: int,
) -> dict[str, Any]:
    """One wrk per base URL at once, ``connections`` each; their summed summary.

    ``per_s`` is all answers over the longest wrk's duration.
    """
    started = [
        start_wrk(wrk, base, token, paths, f"{tag}b{i}", seconds=seconds, connections=connections)
        for i, base in enumerate(bases)
    ]
    results = [finish_wrk(proc, workdir) for proc, workdir in started]
    total: dict[str, Any] = {
        k: sum(r[k] for r in results)
        for k in (
            "requests",
            "ok",
            "non_2xx",
            "status_4xx",
            "status_5xx",
            "connect_errors",
            "read_errors",
            "write_errors",
            "timeouts",
        )
    }
    duration_s = max(r["duration_us"] for r in results) / 1e6
    total["per_s"] = total["requests"] / duration_s
    total["p99_us"] = max(r["p99_us"] for r in results)
    total["per_instance"] = results
    return total
