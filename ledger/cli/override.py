"""``ledger override`` and ``ledger stress``: governed limit changes and stress factors.

``override request`` asks to change one limit at one node for a while (a
count, or an amount in major units); a decrease applies at once, an increase
after two approvals by two people other than the requester. ``stress on``
scales every money limit under a node by a factor in (0, 1] until ``stress off``.

The groups run under the ``ledger`` command, which connects, prints errors
as one line and sets the exit codes (0 done, 1 bad input or refused,
2 ledger unavailable).
"""

from __future__ import annotations

from typing import Any

import click

import ledger.cli.render as fmt
from ledger.facade.client import Ledger
from ledger.facade.overrides import OVERRIDABLE, Override, Status
from ledger.facade.stress import StressChange, format_factor
from ledger.policy.money import format_minor

__all__ = ["override", "stress"]

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
_by = click.option("--by", required=True, help="Who acts (recorded in the audit trail).")
_firm = click.option("--firm", default=None, help="The firm, when the id exists in several.")


def _ledger() -> Ledger:
    # The root command's settings own the connection; reached by duck type
    # because ledger.cli imports this module, never the other way round.
    ledger: Ledger = click.get_current_context().find_root().obj.ledger()
    return ledger


def _emit(as_json: bool, doc: Any, lines: list[str]) -> None:
    click.echo(fmt.to_json(doc) if as_json else "\n".join(lines))


def _value(o: Override, value: int, units: dict[str, int | None]) -> str:
    if not o.money:
        return str(value)
    if o.firm not in units:
        units[o.firm] = _ledger().overrides.minor_units(o.firm)
    mu = units[o.firm]
    return str(value) if mu is None else format_minor(value, mu)


def _override_line(o: Override, units: dict[str, int | None]) -> str:
    change = f"{_value(o, o.policy_value, units)} -> {_value(o, o.value, units)}"
    head = f"{o.id} {o.status.value}: {o.limit} at {o.scope} {change}"
    if o.status is Status.PENDING:
        return f"{head}, approvals {len(o.approvers)}/2"
    if o.until_ms is not None:
        return f"{head} until {fmt.format_ms(o.until_ms)}"
    return head


# -- override --------------------------------------------------------------------------


@click.group()
def override() -> None:
    """Request, approve, reject, cancel and list limit overrides."""


@override.command()
@click.option("--scope", required=True, help="The node, KIND:ID (e.g. desk:EQ-CASH).")
@click.option("--limit", "limit_name", required=True, type=click.Choice(OVERRIDABLE))
@click.option("--value", required=True, help="The new value: a count, or an amount in major units.")
@click.option("--for", "duration", required=True, help="How long: 90s, 30m, 8h.")
@click.option("--ticket", required=True, help="The change ticket it is done under.")
@_by
@click.option("--reason", default=None, help="Why (optional).")
@_json
def request(
    scope: str,
    limit_name: str,
    value: str,
    duration: str,
    ticket: str,
    by: str,
    reason: str | None,
    as_json: bool,
) -> None:
    """Ask for an override; a decrease applies now, an increase needs two approvals."""
    o = _ledger().overrides.request(
        scope, limit_name, value, duration=duration, ticket=ticket, by=by, reason=reason
    )
    lines = [_override_line(o, {})]
    if o.status is Status.PENDING:
        lines.append(f"an increase: two people other than {by} must approve {o.id}")
    _emit(as_json, o.to_dict(), lines)


@override.command()
@click.argument("override_id", metavar="ID")
@_by
@_firm
@_json
def approve(override_id: str, by: str, firm: str | None, as_json: bool) -> None:
    """Approve a pending increase ID; the second approval puts it in force."""
    o = _ledger().overrides.approve(override_id, by=by, firm=firm)
    _emit(as_json, o.to_dict(), [_override_line(o, {})])


@override.command()
@click.argument("override_id", metavar="ID")
@_by
@click.option("--reason", required=True, help="Why it is refused.")
@_firm
@_json
def reject(override_id: str, by: str, reason: str, firm: str | None, as_json: bool) -> None:
    """Refuse a pending increase ID."""
    o = _ledger().overrides.reject(override_id, by=by, reason=reason, firm=firm)
    _emit(as_json, o.to_dict(), [_override_line(o, {})])


@override.command()
@click.argument("override_id", metavar="ID")
@_by
@click.option("--reason", default=None, help="Why (optional).")
@_firm
@_json
def cancel(override_id: str, by: str, reason: str | None, firm: str | None, as_json: bool) -> None:
    """Withdraw your own request ID, or end it now if it is in force."""
    o = _ledger().overrides.cancel(override_id, by=by, reason=reason, firm=firm)
    _emit(as_json, o.to_dict(), [_override_line(o, {})])


@override.command(name="list")
@_json
def list_overrides(as_json: bool) -> None:
    """Every override: pending, active, expired, superseded, rejected, cancelled."""
    found = _ledger().overrides.list()
    units: dict[str, int | None] = {}
    rows = [
        [
            o.id,
            o.firm,
            o.scope,
            o.limit,
            _value(o, o.policy_value, units),
            _value(o, o.value, units),
            o.status.value,
            ",".join(o.approvers) or "-",
            fmt.format_ms(o.until_ms),
            o.requested_by,
            o.ticket,
        ]
        for o in found
    ]
    headers = ["ID", "FIRM", "SCOPE", "LIMIT", "POLICY", "VALUE", "STATUS", "APPROVERS"]
    table = fmt.table([*headers, "UNTIL", "BY", "TICKET"], rows, right=(4, 5))
    _emit(as_json, {"overrides": [o.to_dict() for o in found]}, [table] if found else ["none"])


# -- stress ----------------------------------------------------------------------------


def _stress_line(change: StressChange) -> str:
    if change.op == "off":
        if change.previous_millionths is None:
            return f"{change.scope} was not under stress; nothing changed"
        return f"lifted stress on {change.scope} (was {format_factor(change.previous_millionths)})"
    assert change.factor_millionths is not None
    factor = format_factor(change.factor_millionths)
    line = f"money limits under {change.scope} now scaled by {factor}"
    if change.previous_millionths is not None:
        line += f" (was {format_factor(change.previous_millionths)})"
    return line


@click.group()
def stress() -> None:
    """Scale every money limit under a node by a factor, lift it, list it."""


@stress.command()
@click.option("--scope", required=True, help="The node, KIND:ID (e.g. firm:ACME).")
@click.option("--factor", required=True, help="A decimal in (0, 1], e.g. 0.5.")
@_by
@click.option("--reason", required=True, help="Why (recorded with the factor).")
@_json
def on(scope: str, factor: str, by: str, reason: str, as_json: bool) -> None:
    """Put SCOPE under stress: its money limits and those below it times FACTOR."""
    change = _ledger().stress.on(scope, factor, by=by, reason=reason)
    _emit(as_json, change.to_dict(), [_stress_line(change)])


@stress.command()
@click.option("--scope", required=True, help="The node, KIND:ID.")
@_by
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
@_json
def off(scope: str, by: str, reason: str, as_json: bool) -> None:
    """Lift the stress factor of SCOPE."""
    change = _ledger().stress.off(scope, by=by, reason=reason)
    _emit(as_json, change.to_dict(), [_stress_line(change)])


@stress.command(name="list")
@_json
def list_stress(as_json: bool) -> None:
    """Every stress factor in force, with who, when and why."""
    found = _ledger().stress.list()
    rows = [
        [
            s.scope,
            s.firm,
            format_factor(s.factor_millionths),
            s.by,
            fmt.format_ms(s.at_ms),
            s.reason,
        ]
        for s in found
    ]
    table = fmt.table(["SCOPE", "FIRM", "FACTOR", "BY", "SINCE", "REASON"], rows)
    _emit(as_json, {"stress": [s.to_dict() for s in found]}, [table] if found else ["none"])
