"""``ledger strategy``: disable, reduce-only, re-enable and list strategies and accounts.

SCOPE is ``strategy:ID`` or ``account:ID``. A runtime state wins over the
policy's ``state`` and survives policy loads; ``list`` shows both, and an
automatic disable (the fill throttle) with its cause. Re-enabling takes a
reason and a person: never a ``system:`` identity, and never the identity that
set the state automatically.

The group runs under the ``ledger`` command, which connects, prints errors
as one line and sets the exit codes (0 done, 1 bad input or refused,
2 ledger unavailable).
"""

from __future__ import annotations

from typing import Any

import click

import ledger.cli.render as fmt
from ledger.facade.client import Ledger
from ledger.facade.states import StateChange

__all__ = ["strategy"]

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
_by = click.option("--by", required=True, help="Who acts (recorded with the state).")
_reason = click.option("--reason", required=True, help="Why (recorded with the state).")


def _ledger() -> Ledger:
    # The root command's settings own the connection; reached by duck type
    # because ledger.cli imports this module, never the other way round.
    ledger: Ledger = click.get_current_context().find_root().obj.ledger()
    return ledger


def _emit(as_json: bool, doc: Any, lines: list[str]) -> None:
    click.echo(fmt.to_json(doc) if as_json else "\n".join(lines))


def _change_lines(change: StateChange, by: str, reason: str) -> list[str]:
    scope, state = change.scope, change.state
    if change.already and state == "enabled":
        head = f"{scope} had no runtime state; nothing changed"
    elif change.already:
        head = f"{scope} was already {state}; nothing changed"
    elif state == "enabled":
        head = f"re-enabled {scope}, was {change.previous} (by {by}: {reason})"
    else:
        head = f"set {scope} to {state} (by {by}: {reason})"
    lines = [head]
    if state == "enabled" and change.policy_state != "enabled":
        lines.append(f"note: the policy itself sets {scope} to {change.policy_state}")
    return lines


def _set(scope: str, state: str, by: str, reason: str, as_json: bool) -> None:
    change = _ledger().states.set(scope, state, by=by, reason=reason)
    doc = {"op": state, **change.to_dict(), "by": by, "reason": reason}
    _emit(as_json, doc, _change_lines(change, by, reason))


@click.group()
def strategy() -> None:
    """Disable, reduce-only, re-enable and list strategies and accounts."""


@strategy.command()
@click.argument("scope")
@_by
@_reason
@_json
def disable(scope: str, by: str, reason: str, as_json: bool) -> None:
    """Refuse every new order of SCOPE (strategy:ID or account:ID)."""
    _set(scope, "disabled", by, reason, as_json)


@strategy.command(name="reduce-only")
@click.argument("scope")
@_by
@_reason
@_json
def reduce_only(scope: str, by: str, reason: str, as_json: bool) -> None:
    """Accept only orders of SCOPE that shrink its position."""
    _set(scope, "reduce_only", by, reason, as_json)


@strategy.command()
@click.argument("scope")
@_by
@_reason
@_json
def enable(scope: str, by: str, reason: str, as_json: bool) -> None:
    """Lift the runtime state of SCOPE; the policy's own state applies again."""
    _set(scope, "enabled", by, reason, as_json)


@strategy.command(name="list")
@_json
def list_states(as_json: bool) -> None:
    """Every strategy and account that is not simply enabled, with who, why and cause."""
    states = _ledger().states.list()
    _emit(as_json, {"states": fmt.states_dicts(states)}, fmt.states_lines(states))
