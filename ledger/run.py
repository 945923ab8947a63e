"""The main job for now: ``python -m ledger.run``, a self-contained demonstration.

It connects to ``LEDGER_REDIS_URL``, or, when that is unset, starts an
embedded append-only server in a temporary directory; loads a policy
(``examples/policy.yaml`` by default); reserves a handful of demo orders
through the facade; prints the decisions, the utilization table and the audit
tail; and exits 0. With ``--keep-running`` it prints the URL (and ``export``
lines for a shell: URL, prefix, a token secret) and keeps the embedded server
up until Ctrl-C (or SIGTERM), so the CLI can be tried on it.

Exit codes follow the ``ledger`` command: 1 for an invalid policy file, 2 when
no server can be started or reached.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

import ledger.cli.render as fmt
from ledger.errors import LedgerError, LedgerUnavailable, PolicyError
from ledger.facade.client import Ledger
from ledger.facade.order import Order
from ledger.facade.views import audit_json
from ledger.policy.model import Policy, load_policy_file
from ledger.policy.money import format_minor
from ledger.store.embedded import EmbeddedRedis
from ledger.store.tokens import SECRET_ENV

__all__ = ["main", "DEMO_ORDERS", "default_policy_path"]

ROOT = Path(__file__).resolve().parent.parent

#: Orders against examples/policy.yaml: four fit, two are refused (size, entitlement).
DEMO_ORDERS = (
    Order("demo-1", "T-ALICE", "MM-1", "ACC-1", "AAPL", "buy", "100", "187.25"),
    Order("demo-2", "T-ALICE", "MM-1", "ACC-1", "MSFT", "sell", "50", "410.10"),
    Order("demo-3", "T-BOB", "MM-1", "ACC-2", "AAPL", "buy", "1000", "187.25"),
    Order("demo-4", "T-BOB", "STAT-ARB", "ACC-3", "ESZ6", "buy", "10", "5000"),
    Order("demo-5", "T-ALICE", "MM-1", "ACC-1", "AAPL", "buy", "200000", "1"),
    Order("demo-6", "T-ALICE", "MM-1", "ACC-2", "AAPL", "buy", "10", "187.25"),
)


def default_policy_path() -> Path:
    """``examples/policy.yaml`` of the source tree, else of the working directory."""
    for base in (ROOT, Path.cwd()):
        candidate = base / "examples" / "policy.yaml"
        if candidate.is_file():
            return candidate
    return ROOT / "examples" / "policy.yaml"


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _NoServer(click.ClickException):
    exit_code = 2


@contextmanager
def _server(url: str | None) -> Iterator[str]:
    """The given URL, or an embedded append-only server's, stopped and removed on exit."""
    if url:
        yield url
        return
    try:
        server = EmbeddedRedis(appendonly=True)
        server.start()
    except (FileNotFoundError, RuntimeError) as exc:
        raise _NoServer(f"cannot start an embedded server: {exc}") from exc
    try:
        yield server.url
    finally:
        server.cleanup()


def _exports(url: str, prefix: str) -> list[str]:
    """``export`` lines for the CLI; a token secret is made up when none is set, so that
    ``ledger token create`` works against the demo (a gateway needs the same one)."""
    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    return [
        f"export LEDGER_REDIS_URL={shlex.quote(fmt.safe_url(url))}",
        f"export LEDGER_PREFIX={shlex.quote(prefix)}",
        f"export {SECRET_ENV}={shlex.quote(secret)}",
    ]


def _connect(url: str, prefix: str) -> Ledger:
    try:
        return Ledger.from_url(url, timeout_s=5.0, prefix=prefix, actor="ledger.run")
    except ValueError as exc:
        raise click.ClickException(f"invalid LEDGER_REDIS_URL {fmt.safe_url(url)}: {exc}") from exc


def _demo(lg: Ledger, policy: Policy, source: str, tail: int) -> None:
    rev = lg.load_policy(policy, by="ledger.run", source=source)
    click.echo(f"policy {source}: revision {rev}, sha256 {policy.sha256}")
    rows = []
    for order in DEMO_ORDERS:
        d = lg.reserve(order)
        detail = format_minor(d.notional, policy.minor_units) if d.accepted else d.scope or "-"
        rows.append(
            [
                d.order_id,
                f"{order.side} {order.qty} {order.symbol} @ {order.price}",
                "accepted" if d.accepted else "rejected",
                d.reason.value,
                detail + (" (replayed)" if d.replayed else ""),
            ]
        )
    click.echo("\ndecisions")
    click.echo(fmt.table(["ORDER", "WHAT", "DECISION", "REASON", "NOTIONAL/SCOPE"], rows))
    click.echo(f"\nutilization (money in {policy.currency})")
    click.echo(fmt.utilization_table(lg.utilization(), policy))
    click.echo(f"\naudit tail (newest {tail})")
    for record in lg.audit_tail(tail):
        click.echo(audit_json(record))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Policy file to load [default: examples/policy.yaml].",
)
@click.option(
    "--keep-running", is_flag=True, help="Keep the server up until Ctrl-C and print its URL."
)
@click.option(
    "--tail",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Audit records to print.",
)
def main(policy_path: str | None, keep_running: bool, tail: int) -> None:
    """Run the demonstration: server, policy, demo orders, utilization, audit tail."""
    path = Path(policy_path) if policy_path else default_policy_path()
    try:
        policy = load_policy_file(path)
    except PolicyError as exc:
        click.echo("\n".join(exc.problems), err=True)
        raise SystemExit(1) from None
    prefix = os.environ.get("LEDGER_PREFIX") or "ledger"
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    demo_done = False
    try:
        with _server(os.environ.get("LEDGER_REDIS_URL")) as url:
            click.echo(f"ledger at {fmt.safe_url(url)} (prefix {prefix})")
            lg = _connect(url, prefix)
            try:
                _demo(lg, policy, str(path), tail)
                demo_done = True
                if keep_running:
                    click.echo(f"\nrunning at {url}; try: ledger --redis-url {url} status")
                    click.echo("to point the ledger command at it, run in your shell:")
                    for line in _exports(url, prefix):
                        click.echo(f"  {line}")
                    click.echo("press Ctrl-C to stop")
                    while True:
                        time.sleep(3600)
            finally:
                lg.redis.close()
    except KeyboardInterrupt:
        click.echo("stopped")
        if not demo_done:
            raise SystemExit(130) from None
    except LedgerUnavailable as exc:
        raise _NoServer(f"ledger unavailable: {exc}") from exc
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    main(prog_name="python -m ledger.run")
