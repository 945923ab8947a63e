"""CPU per ``POST /v1/orders`` of the gateway's WSGI app in this process, beside the library's.

    python -m bench.gateway_profile [--orders 2000] [--rounds 5] [--profile]

Starts a private server (``ledger.embedded``), loads the gateway scenario's
firm (core controls and message windows), creates an order-entry token and
calls the Flask app directly with a prepared WSGI environ (no HTTP server,
no test client: what is measured is the app). Each round times ``--orders``
library reserves, then as many orders through the app, in CPU time of this
process; the figures are the best round's, and the app's cost beyond the
library's is what the gateway adds in Python. ``--profile`` then prints a
cProfile of the app (CPU time) by own and by cumulative time.

Run from another checkout (``cd ../old && PYTHONPATH=. python
/path/to/bench/gateway_profile.py``) to compare commits on one machine.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

SECRET = "bench-gateway-profile-secret"


def _environ(body: bytes, token: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/v1/orders",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8101",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8101",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_ACCEPT": "*/*",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gateway_profile", description=__doc__)
    p.add_argument("--orders", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("LEDGER_TOKEN_SECRET", SECRET)

    from bench.scenarios.gateway import FULL  # noqa: PLC0415 - after the secret is set
    from bench.workload import policy_doc  # noqa: PLC0415
    from gateway import create_app  # noqa: PLC0415
    from ledger import Ledger, Order, parse_policy  # noqa: PLC0415
    from ledger.store.embedded import EmbeddedRedis  # noqa: PLC0415
    from ledger.store.tokens import Role, TokenStore  # noqa: PLC0415

    paths = FULL.paths()

    def fields(i: int) -> dict[str, str]:
        account, strategy, trader = paths[i % len(paths)]
        return {
            "order_id": f"p{i}",
            "trader": trader,
            "strategy": strategy,
            "account": account,
            "symbol": "XYZ",
            "side": "buy" if i % 2 else "sell",
            "qty": "10",
            "price": "100.25",
        }

    srv = EmbeddedRedis().start()
    try:
        lg = Ledger.from_url(srv.url, actor="bench")
        lg.load_policy(parse_policy(policy_doc([FULL]), source="bench:profile"), by="bench")
        token = TokenStore(lg.redis, "ledger", secret=os.environ["LEDGER_TOKEN_SECRET"]).create(
            Role.ORDER_ENTRY, "bench-profile"
        )
        app = create_app({"REDIS_URL": srv.url, "REDIS_TIMEOUT_MS": 2000})
        statuses: dict[str, int] = {}

        def call(i: int) -> None:
            seen: list[str] = []
            environ = _environ(json.dumps(fields(i)).encode(), token)
            b"".join(app(environ, lambda status, headers, exc=None: seen.append(status)))
            statuses[seen[0]] = statuses.get(seen[0], 0) + 1

        def reserve(i: int) -> None:
            lg.reserve(Order(**fields(i)))

        def cpu_us(fn: Callable[[int], None], start: int) -> float:
            t0 = time.process_time()
            for i in range(start, start + args.orders):
                fn(i)
            return (time.process_time() - t0) / args.orders * 1e6

        for i in range(300):
            call(10_000_000 + i)
        lib, gw = [], []
        for r in range(args.rounds):
            lib.append(cpu_us(reserve, 1_000_000 * (r + 1)))
            gw.append(cpu_us(call, 1_000_000 * (r + 1) + 500_000))
        print(
            f"best of {args.rounds} rounds of {args.orders}: library reserve "
            f"{min(lib):.0f} µs CPU, gateway app {min(gw):.0f} µs CPU per order; "
            f"the app adds {min(gw) - min(lib):.0f} µs"
        )
        print(f"answers: {statuses}")
        if args.profile:
            prof = cProfile.Profile(time.process_time)
            prof.enable()
            for i in range(args.orders):
                call(20_000_000 + i)
            prof.disable()
            stats = pstats.Stats(prof)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumtime").print_stats(50)
    finally:
        srv.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
