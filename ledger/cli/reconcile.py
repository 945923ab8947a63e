"""``ledger reconcile FILE --by NAME``: compare a drop copy with the ledger, and repair it.

FILE holds the venue's (or the OMS's) orders and fills, JSON lines or CSV
(:mod:`ledger.facade.reconcile`; example: examples/dropcopy.jsonl). Every difference
is printed; ``--apply`` repairs each order atomically and audits it with
``--by`` and ``--reason``. Exit codes: 0 nothing is left for a person (no
difference, or every one repaired with no limit exceeded), 1 differences
remain (no ``--apply``, or ones reconcile cannot repair), a reconciled order
put a node over a limit, or bad input; 2 the ledger is unavailable.
"""

from __future__ import annotations

import click

import ledger.cli.render as fmt
from ledger.errors import InvalidInput
from ledger.facade.client import Ledger
from ledger.facade.reconcile import ReconcileReport, read_drop_copy
from ledger.reasons import Reason

__all__ = ["reconcile", "report_lines", "settled"]

#: Differences that ``--apply`` leaves to a person.
REPORT_ONLY = frozenset({"not_in_drop_copy", "unknown_account", "unknown_order"})


def settled(report: ReconcileReport) -> bool:
    """Nothing is left for a person to look at."""
    if report.ok:
        return True
    if not report.applied or report.over:
        return False
    return all(r.reason is Reason.OK for r in report.repairs) and not any(
        d.kind in REPORT_ONLY for d in report.differences
    )


def report_lines(report: ReconcileReport) -> list[str]:
    lines = [
        f"{report.orders} orders and {report.fills} fills compared: "
        f"{len(report.differences)} differences"
    ]
    if report.differences:
        lines.append(
            fmt.table(
                ["kind", "order", "account", "ledger", "venue"],
                [
                    [d.kind, d.order_id, d.account or "-", d.ledger or "-", d.venue or "-"]
                    for d in report.differences
                ],
            )
        )
    if report.applied:
        fixed = [r for r in report.repairs if r.reason is Reason.OK]
        lines.append(f"repaired {len(fixed)} of {len(report.repairs)} orders")
        for r in report.repairs:
            if r.reason is not Reason.OK:
                lines.append(f"  {r.order_id}: {r.reason.value} {r.message}".rstrip())
        for row in report.over:
            lines.append(
                f"OVER LIMIT after reconciliation: {row.scope} {row.limit_name} "
                f"used {row.used} > limit {row.limit}"
            )
    elif report.differences:
        lines.append("nothing changed; --apply repairs them")
    return lines


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--by", required=True, help="Who reconciles (recorded in the audit trail).")
@click.option(
    "--reason", default="reconciliation", show_default=True, help="Why (recorded in the audit)."
)
@click.option("--apply", is_flag=True, help="Repair every difference reconcile can repair.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def reconcile(file: str, by: str, reason: str, apply: bool, as_json: bool) -> None:
    """Compare a drop copy (orders and fills) with the ledger; --apply repairs it."""
    try:
        records = read_drop_copy(file)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput("FILE", f"{file}: cannot read it ({exc})") from exc
    # The root command's settings own the connection (see ledger.cli.state).
    lg: Ledger = click.get_current_context().find_root().obj.ledger()
    report = lg.reconcile(records, by=by, reason=reason, apply=apply)
    click.echo(fmt.to_json(report.to_dict()) if as_json else "\n".join(report_lines(report)))
    if not settled(report):
        click.get_current_context().exit(1)
