"""``POST /v1/reconcile`` (ops): compare a drop copy with the ledger, and repair it.

Body: ``{"records": [...], "reason": "...", "apply": false}``; ``records``
are the drop copy's order and fill records as :mod:`ledger.reconcile`
documents them (the JSON-lines fields, one object each). The answer is the
report: every difference, and with ``apply`` every repair and the nodes a
reconciled order put over a limit. The token's name is recorded as who
reconciled, with ``reason``, on every repair.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from gateway.auth import caller_firms, requires
from gateway.connection import get_ledger
from gateway.errors import invalid
from gateway.wire import read_body, respond
from ledger.tokens import Principal, Role

__all__ = ["bp", "MAX_RECORDS"]

bp = Blueprint("reconcile", __name__, url_prefix="/v1")

#: Records one request may carry; a larger drop copy goes through the CLI or in parts.
MAX_RECORDS = 10_000


@bp.post("/reconcile")
@requires(Role.OPS)
def reconcile() -> Response:
    """Report the differences between a drop copy and the ledger; repair them with apply."""
    body = read_body()
    unknown = sorted(str(k) for k in body if k not in ("records", "reason", "apply"))
    if unknown:
        raise invalid("unknown field(s): " + ", ".join(unknown))
    records = body.get("records")
    if not isinstance(records, list):
        raise invalid("records: must be a list of order and fill records")
    if len(records) > MAX_RECORDS:
        raise invalid(f"records: at most {MAX_RECORDS} per request")
    reason = body.get("reason", "reconciliation")
    if not isinstance(reason, str):
        raise invalid("reason: must be a text")
    apply = body.get("apply", False)
    if not isinstance(apply, bool):
        raise invalid("apply: must be true or false")
    principal: Principal = g.principal
    # A token bound to firms reconciles only their accounts and orders.
    report = get_ledger().reconcile(
        records, by=principal.name, reason=reason, apply=apply, firm=caller_firms(principal)
    )
    return respond({"by": principal.name, "reason": reason, **report.to_dict()})
