"""``python -m bench.archive_rate [--orders N] [--dir DIR]``: archiver and decision rates.

On a private server (``ledger.store.embedded``), one process reserves and releases
``N`` orders (two audit records each) in two firms with no limits, in
alternating blocks: firm ``G`` has no archiver registered, firm ``F`` has one
(the scripts' extra ``XINFO GROUPS``), so a busy machine slows both alike.
Then ``ledger.audit.Archiver`` drains F's backlog into segment files
(written and fsynced before each acknowledgement, as in production) and
``verify`` reads them back. Prints decisions/s, records/s and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import redis

from bench.harness import SCRIPT_CALLS, commandstats
from ledger import Ledger, Order, parse_policy
from ledger.audit import Archiver, register, verify
from ledger.store.embedded import EmbeddedRedis

POLICY = {
    "version": 1,
    "currency": "USD",
    "firms": [{"id": f, "desks": [{"id": f"D{f}", "accounts": [{"id": f"A{f}"}]}]} for f in "FG"],
    "strategies": [{"id": f"S{f}", "accounts": [f"A{f}"]} for f in "FG"],
    "traders": [{"id": f"T{f}", "accounts": [f"A{f}"], "strategies": [f"S{f}"]} for f in "FG"],
}
BLOCK = 1000


def _decide(lg: Ledger, firm: str, n: int, tag: str) -> tuple[float, float]:
    """Seconds for ``n`` reserve + release pairs in ``firm``, and the server's µs in them."""
    lg.redis.config_resetstat()
    start = time.perf_counter()
    for i in range(n):
        oid = f"{tag}{i}"
        lg.reserve(Order(oid, f"T{firm}", f"S{firm}", f"A{firm}", "XYZ", "buy", "1", "1"))
        lg.release(oid, reason="done")
    wall = time.perf_counter() - start
    stats = commandstats(lg.redis)
    return wall, float(sum(stats.get(name, (0, 0))[1] for name in SCRIPT_CALLS))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.archive_rate", description=__doc__)
    p.add_argument("--orders", type=int, default=20_000)
    p.add_argument("--dir", default=None, help="segment directory (default: a temporary one)")
    args = p.parse_args(argv)
    n = args.orders
    with EmbeddedRedis() as server, tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.dir or tmp)
        client = redis.Redis.from_url(server.url)
        lg = Ledger(client, actor="bench")
        lg.load_policy(parse_policy(POLICY), by="bench")
        register(client, lg.keys.audit("F"))
        plain = registered = plain_us = registered_us = 0.0
        for b in range(0, n, BLOCK):
            size = min(BLOCK, n - b)
            wall, us = _decide(lg, "F", size, f"f{b}-")
            registered, registered_us = registered + wall, registered_us + us
            wall, us = _decide(lg, "G", size, f"g{b}-")
            plain, plain_us = plain + wall, plain_us + us
        backlog = sum(x.backlog or 0 for x in lg.archive_lag())
        start = time.perf_counter()
        archived = Archiver(client, lg.keys, directory).run()
        archive_s = time.perf_counter() - start
        start = time.perf_counter()
        report = verify(directory)
        verify_s = time.perf_counter() - start
        decisions_plain = 2 * n / plain
        decisions = 2 * n / registered
        records = archived / archive_s
        print(f"server: {server.binary}")
        print(
            f"decisions (reserve or release, 1 audit record each), 1 process: "
            f"{decisions_plain:,.0f}/s without an archiver, {decisions:,.0f}/s with one "
            f"registered; Redis time per script call {plain_us / (2 * n):.1f} µs without, "
            f"{registered_us / (2 * n):.1f} µs with"
        )
        print(
            f"archiver: {archived:,} records (both firms' streams; F's backlog was {backlog:,}) "
            f"in {archive_s:.2f} s = "
            f"{records:,.0f} records/s, fsync before every acknowledged batch "
            f"({records / decisions:.1f}x the decision rate)"
        )
        print(f"verify: {report.records:,} records in {verify_s:.2f} s = "
              f"{report.records / verify_s:,.0f} records/s, ok={report.ok}")  # fmt: skip


if __name__ == "__main__":
    main()
