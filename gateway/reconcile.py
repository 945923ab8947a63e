"""``POST /v1/reconcile`` (ops): compare a drop copy with the ledger, and repair it.

Body: ``{"records": [...], "reason": "...", "apply": false}``; ``records``
are the drop copy's order and fill records as :mod:`ledger.facade.reconcile`
documents them (the JSON-lines fields, one object each). The answer is the
report: every difference, and with ``apply`` every repair and the nodes a
reconciled order put over a limit. The token's name is recorded as who
reconciled, with ``reason``, on every repair.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

from gateway.api import api
from gateway.auth import caller_firms, requires
from gateway.bodies import MAX_RECORDS, Reconcile
from gateway.connection import get_ledger
from gateway.replies import ReconcileReport
from gateway.wire import respond
from ledger.store.tokens import Principal, Role

__all__ = ["bp", "MAX_RECORDS"]

bp = Blueprint("reconcile", __name__, url_prefix="/v1")


@bp.post("/reconcile")
@requires(Role.OPS)
@api(Reconcile, answers={200: ("The differences, and the repairs.", ReconcileReport)})
def reconcile(body: Reconcile) -> Response:
    """Compare a drop copy with the ledger; repair it with apply.

    Missing orders are recorded as reconciled (never refused, flagged over a
    limit), orders the venue closed released, missing fills applied by fill id;
    each repair audited with the token's name and the reason.
    """
    principal: Principal = g.principal
    # A token bound to firms reconciles only their accounts and orders.
    report = get_ledger().reconcile(
        body.records,
        by=principal.name,
        reason=body.reason,
        apply=body.apply,
        firm=caller_firms(principal),
    )
    return respond({"by": principal.name, "reason": body.reason, **report.to_dict()})
