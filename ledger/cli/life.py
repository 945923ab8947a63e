"""``ledger sweep``: release every order whose time in force has run out, now.

Every decision of a firm already retires a few due orders by itself
(lua/includes/expiry.lua); the sweep does the rest on demand, e.g. right after
the trading-day roll. Each expiry is audited (``release``, ``expired``) and
published on the events channel. Exit codes as for every ``ledger`` command:
0 done, 1 bad input, 2 the ledger is unavailable.
"""

from __future__ import annotations

from typing import Any

import click

import ledger.cli.render as fmt

__all__ = ["sweep"]


@click.command()
@click.option("--firm", "firms", multiple=True, metavar="FIRM", help="Only this firm (repeatable).")
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Orders retired per script call (bounded work per call).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def sweep(settings: Any, firms: tuple[str, ...], batch: int, as_json: bool) -> None:
    """Release the orders due by server time now (DAY at the roll, GTD, IOC/FOK grace)."""
    lg = settings.ledger()
    done = lg.sweep(firm=list(firms) or None, batch=batch)
    total = sum(done.values())
    if as_json:
        click.echo(fmt.to_json({"firms": done, "expired": total}))
        return
    lines = [
        f"{firm}: {n} expired order{'' if n == 1 else 's'} released" for firm, n in done.items()
    ]
    click.echo("\n".join(lines or ["no firm has a policy: nothing to sweep"]))
