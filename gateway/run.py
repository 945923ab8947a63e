"""The main job: ``python -m gateway.run``.

Starts an embedded Redis when ``LEDGER_REDIS_URL`` is not set (append-only,
``appendfsync always``), loads the policy (``examples/policy.yaml`` by
default), creates one demo token per role and prints them, then starts two
gateway instances, each a gunicorn master with threaded workers that keep
connections alive (``gateway/gunicorn.conf.py``), and runs
until Ctrl-C, when it stops everything it started. It prints ``export``
lines (Redis URL, token secret, one token per role) that point the
``ledger`` command and scripts at what it started.

``--smoke`` starts everything, sends one order through each instance, prints
the answers and stops; the exit status is 0 only if both were accepted.

Environment: ``LEDGER_REDIS_URL``, ``LEDGER_PREFIX``, ``LEDGER_TOKEN_SECRET`` (a
random one if unset), ``LEDGER_GATEWAY_HOST``
(``127.0.0.1``), ``LEDGER_GATEWAY_PORTS`` (``8101,8102``),
``LEDGER_GATEWAY_WORKERS`` (``2`` per instance), ``LEDGER_GATEWAY_THREADS`` (``4`` per
worker), ``LEDGER_DATA_DIR`` (where the
embedded Redis keeps its append-only file; a temporary directory if unset).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from ledger import Ledger
from ledger.store.embedded import EmbeddedRedis
from ledger.store.tokens import SECRET_ENV, Role, TokenStore

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = ROOT / "examples" / "policy.yaml"
CONF = Path(__file__).resolve().parent / "gunicorn.conf.py"
#: Demo token names and desks; ``desk-head`` sees the first desk of the example policy.
DEMO = {
    Role.ORDER_ENTRY: (),
    Role.OPS: (),
    Role.DESK_HEAD: ("EQ-CASH",),
    Role.RISK_ADMIN: (),
    Role.MARKET_DATA: (),
    Role.MONITORING: (),
}
SMOKE_ORDER = {
    "trader": "T-ALICE",
    "strategy": "MM-1",
    "account": "ACC-1",
    "symbol": "AAPL",
    "side": "buy",
    "qty": "10",
    "price": "187.25",
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gateway.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--smoke",
        action="store_true",
        help="send one order through each instance, print the answers, stop",
    )
    p.add_argument(
        "--policy",
        default=os.environ.get("LEDGER_POLICY", str(DEFAULT_POLICY)),
        help="policy file to load (default: examples/policy.yaml)",
    )
    p.add_argument("--host", default=os.environ.get("LEDGER_GATEWAY_HOST", "127.0.0.1"))
    p.add_argument(
        "--ports",
        default=os.environ.get("LEDGER_GATEWAY_PORTS", "8101,8102"),
        help="comma-separated, one instance per port (default 8101,8102)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("LEDGER_GATEWAY_WORKERS", "2")),
        help="gunicorn workers per instance (default 2)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("LEDGER_GATEWAY_THREADS", "4")),
        help="threads per worker (default 4)",
    )
    return p.parse_args(argv)


def _http(
    method: str, url: str, token: str | None = None, body: Any = None, timeout_s: float = 5.0
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def launch(
    url: str,
    *,
    bind: str,
    workers: int,
    threads: int | None = None,
    prefix: str = "ledger",
    name: str | None = None,
    env: dict[str, str] | None = None,
    output: Any = None,
) -> subprocess.Popen[bytes]:
    """Start one gateway instance under gunicorn, as the main job does.

    ``threads`` per worker (None: the config's default, 4); ``env`` adds or
    overrides variables; ``output`` receives stdout and stderr (a file or
    ``subprocess.DEVNULL``; None inherits ours).
    """
    # Each instance keeps its own metrics directory (gunicorn.conf.py makes one).
    base_env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONF)],
        env={
            **base_env,
            "LEDGER_REDIS_URL": url,
            "LEDGER_PREFIX": prefix,
            "LEDGER_GATEWAY_WORKERS": str(workers),
            **({"LEDGER_GATEWAY_THREADS": str(threads)} if threads is not None else {}),
            "LEDGER_GATEWAY_BIND": bind,
            "LEDGER_GATEWAY_NAME": name or f"ledger-gateway-{bind.rpartition(':')[2]}",
            **(env or {}),
        },
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Wait until the instance at ``base`` answers /readyz with 200; raise if it exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway at {base} exited with status {proc.returncode}")
        try:
            if _http("GET", base + "/readyz", timeout_s=1.0)[0] == 200:
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway at {base} was not ready after {timeout_s:.0f} s")
        time.sleep(0.1)


def _demo_tokens(tokens: TokenStore) -> dict[Role, str]:
    out = {}
    for role, desks in DEMO.items():
        name = f"demo-{role.value}"
        tokens.revoke(name)
        out[role] = tokens.create(role, name, desks)
    return out


def export_lines(
    url: str | None, prefix: str, secret: str, tokens: dict[Role, str] | None = None
) -> list[str]:
    """``export`` lines for a shell: the Redis URL (None: the caller's own, not
    repeated, as it may hold a password), prefix, token secret and demo tokens."""
    lines = [f"export LEDGER_REDIS_URL={shlex.quote(url)}"] if url else []
    lines.append(f"export LEDGER_PREFIX={shlex.quote(prefix)}")
    lines.append(f"export {SECRET_ENV}={shlex.quote(secret)}")
    for role, value in (tokens or {}).items():
        name = "LEDGER_TOKEN_" + role.value.upper().replace("-", "_")
        lines.append(f"export {name}={shlex.quote(value)}")
    return lines


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop gateway instances: SIGTERM (gunicorn's graceful stop), then SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    ports = [int(p) for p in args.ports.split(",") if p.strip()]
    prefix = os.environ.get("LEDGER_PREFIX", "ledger")
    embedded: EmbeddedRedis | None = None
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        url = os.environ.get("LEDGER_REDIS_URL")
        if not url:
            embedded = EmbeddedRedis(
                datadir=os.environ.get("LEDGER_DATA_DIR") or None, appendonly=True
            ).start()
            url = embedded.url
            print(f"redis      embedded, {url} (append-only, data in {embedded.datadir})")
        else:
            print(f"redis      {url}")
        lg = Ledger.from_url(url, prefix=prefix, actor="gateway.run")
        rev = lg.load_policy(args.policy, by="gateway.run")
        print(f"policy     {args.policy} loaded as revision {rev}")
        # The gateways refuse to start without a token secret; a demo makes its own.
        secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
        tokens = _demo_tokens(TokenStore(lg.redis, prefix, secret=secret))
        print("tokens     (shown once; only their keyed hash is stored)")
        for role, value in tokens.items():
            print(f"  {role.value:<12} {value}")
        for port in ports:
            procs.append(
                launch(
                    url,
                    bind=f"{args.host}:{port}",
                    workers=args.workers,
                    threads=args.threads,
                    prefix=prefix,
                    env={SECRET_ENV: secret},
                )
            )
        bases = [f"http://{args.host}:{port}" for port in ports]
        for base, proc in zip(bases, procs, strict=True):
            wait_ready(base, proc)
        print(
            f"gateways   {len(bases)} instances x {args.workers} workers x {args.threads} threads"
        )
        for base in bases:
            print(f"  {base}  (API {base}/v1, {base}/openapi.json, {base}/metrics)")
        print(f"dashboard  {bases[0]}/dashboard?token={tokens[Role.OPS]}")
        print("shell      to point the ledger CLI and scripts at this stack:")
        for line in export_lines(url if embedded is not None else None, prefix, secret, tokens):
            print(f"  {line}")
        if args.smoke:
            return _smoke(bases, tokens[Role.ORDER_ENTRY])
        print("running    Ctrl-C stops everything")
        while not stopping:
            for proc in procs:
                if proc.poll() is not None:
                    print(
                        f"a gateway exited with status {proc.returncode}; stopping", file=sys.stderr
                    )
                    return 1
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)
        if embedded is not None:
            embedded.cleanup()
        print("stopped")


def _smoke(bases: list[str], token: str) -> int:
    ok = True
    run = uuid.uuid4().hex[:8]
    for i, base in enumerate(bases):
        order = {**SMOKE_ORDER, "order_id": f"smoke-{run}-{i}"}
        status, body = _http("POST", base + "/v1/orders", token, order)
        print(f"smoke      {base}/v1/orders -> {status} {json.dumps(body, sort_keys=True)}")
        ok = ok and status == 201 and body.get("decision") == "accepted"
    print("smoke      " + ("OK: both instances accepted an order" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
