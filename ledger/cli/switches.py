"""``ledger kill / unkill / status``: kill switches, and what is stopped and why."""

from __future__ import annotations

import click

import ledger.cli.render as fmt
from ledger.cli.audit import lag_dicts, lag_lines
from ledger.cli.root import (
    Settings,
    emit,
    json_option,
    pass_settings,
    policy_info,
)
from ledger.errors import UnknownScope
from ledger.facade.cancels import cancel_instructions

_by = click.option("--by", required=True, help="Who acts (recorded with the switch).")
_reason = click.option("--reason", required=True, help="Why (recorded with the switch).")


def _switch(
    op: str,
    settings: Settings,
    scope: str,
    by: str,
    reason: str,
    as_json: bool,
    cancel_open: bool = False,
) -> None:
    lg = settings.ledger()
    cancels = None
    if op == "kill":
        result = lg.kill(scope, by=by, reason=reason)
        if cancel_open:
            cancels = cancel_instructions(lg, result)
    else:
        result = lg.unkill(scope, by=by, reason=reason)
        pol = lg.policy()
        if result.already and scope != "global" and (pol is None or pol.node(scope) is None):
            raise UnknownScope(f"{scope}: no such node in the loaded policy, and no kill on it")
    emit(
        as_json,
        fmt.kill_dict(op, result, by, reason, cancels),
        fmt.kill_lines(op, result, by, reason, cancels),
    )


def _one_scope(scope: str | None, scope_option: str | None) -> str:
    """SCOPE given as the argument or as ``--scope``, but not two different ones."""
    if scope is not None and scope_option is not None and scope != scope_option:
        raise click.UsageError(f"two scopes given: {scope} and --scope {scope_option}")
    chosen = scope if scope is not None else scope_option
    if chosen is None:
        raise click.UsageError("Missing argument 'SCOPE' (or --scope).")
    return chosen


_scope = click.argument("scope", required=False)
_scope_option = click.option(
    "--scope", "scope_option", metavar="SCOPE", help="SCOPE, given as an option."
)


@click.command()
@_scope
@_scope_option
@_by
@_reason
@click.option(
    "--cancel-open",
    is_flag=True,
    help="Print a cancel instruction per open order (account, strategy, trader, "
    "symbol, side, quantity left).",
)
@json_option
@pass_settings
def kill(
    settings: Settings,
    scope: str | None,
    scope_option: str | None,
    by: str,
    reason: str,
    cancel_open: bool,
    as_json: bool,
) -> None:
    """Stop new orders under SCOPE and list its open orders.

    SCOPE is global, or kind:id such as desk:EQ-CASH. The open orders printed
    are to be cancelled at the venue.
    """
    _switch("kill", settings, _one_scope(scope, scope_option), by, reason, as_json, cancel_open)


@click.command()
@_scope
@_scope_option
@_by
@_reason
@json_option
@pass_settings
def unkill(
    settings: Settings,
    scope: str | None,
    scope_option: str | None,
    by: str,
    reason: str,
    as_json: bool,
) -> None:
    """Lift the kill switch on SCOPE.

    Takes a person: a system: identity (an automatic trigger) never may, nor
    the identity that set an automatic kill.
    """
    _switch("unkill", settings, _one_scope(scope, scope_option), by, reason, as_json)


@click.command()
@json_option
@pass_settings
def status(settings: Settings, as_json: bool) -> None:
    """Active kill switches, strategy and account states, the policy revision, archive lag.

    Each kill and state shows who set it, when, and why; an automatic disable
    also shows its cause.
    """
    lg = settings.ledger()
    info, kills, states = policy_info(lg), lg.kills(), lg.states.list()
    lags = lg.archive_lag()
    emit(
        as_json,
        fmt.status_dict(info, kills, states) | {"archive": lag_dicts(lags)},
        [*fmt.status_lines(info, kills, states), *lag_lines(lags)],
    )
