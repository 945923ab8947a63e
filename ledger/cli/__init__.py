"""The ``ledger`` command line: policy, kill switches, utilization, audit trail, check.

Every command prints aligned text for people, or one JSON document with
``--json`` for scripts (``audit tail`` always prints JSON lines); rendering
lives in :mod:`ledger.cli.render`. Exit codes:

* 0: done;
* 1: bad input (usage, unknown scope, invalid policy file, bad URL), or
  ``check`` found a breach;
* 2: the ledger is unavailable (Redis unreachable, timed out, or answered an error).

Errors are one line on stderr (a policy file: one line per problem), never a traceback.
The root command is :mod:`ledger.cli.root`; each command group is a module of this package.
"""

from __future__ import annotations

from ledger.cli import (
    audit,
    drill,
    exposure,
    life,
    override,
    policy,
    prices,
    reconcile,
    state,
    switches,
    token,
    views,
)
from ledger.cli.root import EXIT_BAD_INPUT, EXIT_UNAVAILABLE, cli

__all__ = ["cli", "main", "EXIT_BAD_INPUT", "EXIT_UNAVAILABLE"]

policy.policy.add_command(exposure.exposure)
cli.add_command(policy.policy)
cli.add_command(switches.kill)
cli.add_command(switches.unkill)
cli.add_command(switches.status)
cli.add_command(views.utilization)
cli.add_command(audit.audit)
cli.add_command(views.check)
cli.add_command(token.token)
cli.add_command(prices.prices)
cli.add_command(prices.symbol)
cli.add_command(state.strategy)
cli.add_command(override.override)
cli.add_command(override.stress)
cli.add_command(drill.drill)
cli.add_command(reconcile.reconcile)
cli.add_command(life.sweep)


def main() -> None:
    """Console-script entry point (``ledger``)."""
    cli(prog_name="ledger")
