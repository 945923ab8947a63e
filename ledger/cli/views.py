"""``ledger utilization`` and ``ledger check``: usage against limits, and the invariants."""

from __future__ import annotations

import click

import ledger.cli.render as fmt
from ledger.cli.root import (
    EXIT_BAD_INPUT,
    NO_POLICY,
    BadInput,
    Settings,
    emit,
    json_option,
    live_policy,
    pass_settings,
)


@click.command()
@click.argument("scope", default="global")
@json_option
@pass_settings
def utilization(settings: Settings, scope: str, as_json: bool) -> None:
    """Used against limit under SCOPE (default: global).

    One row per node and limit; money in major units of the policy currency.
    """
    lg = settings.ledger()
    pol = live_policy(lg)
    rows = lg.utilization(scope)
    pol = lg.policy() or pol  # the one the rows were computed with
    title = f"utilization under {scope} (money in {pol.currency})"
    table = fmt.utilization_table(rows, pol)
    emit(as_json, fmt.utilization_dict(scope, rows, pol), [title, table])


@click.command()
@json_option
@pass_settings
def check(settings: Settings, as_json: bool) -> None:
    """Verify aggregates and limits; exit 1 naming each breach.

    Every node's aggregates must equal the sums over its orders, and no
    enforced limit may be exceeded. With no policy loaded there is nothing
    to check against: that exits 1 too, saying so.
    """
    lg = settings.ledger()
    if lg.policy(refresh=True) is None:
        raise BadInput(f"nothing checked: {NO_POLICY}")
    report = lg.check()
    emit(as_json, fmt.check_dict(report), fmt.check_lines(report))
    if not report.ok:
        click.get_current_context().exit(EXIT_BAD_INPUT)
