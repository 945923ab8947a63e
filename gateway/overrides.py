"""``/v1/overrides`` and ``/v1/stress``: governed limit changes (risk-admin only).

Who acts is always the token's principal, never a body field: the two
approvals of an increase need two distinct tokens, neither the requester's.

* ``POST /v1/overrides``: ``{scope, limit, value, duration, ticket, reason?}``
  with ``duration`` as text (``"30m"``) or ``duration_ms``; 201 with the
  override (``active`` for a decrease, ``pending`` for an increase).
* ``POST /v1/overrides/<id>/approve`` ``{firm?}``, ``.../reject``
  ``{reason, firm?}``, ``.../cancel`` ``{reason?, firm?}``: 200 with the override;
  409 when the step does not fit its state or the person, 404 for an unknown id.
* ``GET /v1/overrides``: every override with its status as of now.
* ``POST /v1/stress`` ``{scope, factor, reason}``, ``DELETE /v1/stress``
  ``{scope, reason}``, ``GET /v1/stress``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from gateway.api import api
from gateway.auth import requires
from gateway.bodies import Approve, OverrideRequest, Reject, StressOff, StressOn, Withdraw
from gateway.connection import get_ledger
from gateway.error_handlers import handle_api_error
from gateway.errors import ApiCode, ApiError
from gateway.replies import Override, Overrides, StressAnswer, StressList
from gateway.wire import respond
from ledger.facade.overrides import OverrideRefused, UnknownOverride
from ledger.store.tokens import Principal, Role

__all__ = ["bp"]

bp = Blueprint("overrides", __name__, url_prefix="/v1")


@bp.errorhandler(UnknownOverride)
def _unknown(exc: UnknownOverride) -> Any:
    return handle_api_error(ApiError(404, ApiCode.NOT_FOUND, str(exc)))


@bp.errorhandler(OverrideRefused)
def _refused(exc: OverrideRefused) -> Any:
    return handle_api_error(ApiError(409, ApiCode.INVALID_REQUEST, str(exc)))


def _who() -> str:
    principal: Principal = g.principal
    return principal.name


_OVERRIDE_ID = {"override_id": {"schema": {"type": "string", "pattern": "^OV-[1-9][0-9]*$"}}}
_STEP = {
    404: ("No such override (NOT_FOUND), or its scope left the policy.", None),
    409: (
        "Not in a state for this step, or not a person who may take it: the requester "
        "approving or rejecting, one person approving twice, anyone else cancelling "
        "(INVALID_REQUEST). Nothing changed.",
        None,
    ),
}


@bp.post("/overrides")
@requires(Role.RISK_ADMIN)
@api(
    OverrideRequest,
    answers={
        201: ("Recorded; active (decrease) or pending (increase).", Override),
        404: ("The scope names no node of the policy (UNKNOWN_NODE).", None),
    },
)
def request_override(body: OverrideRequest) -> Response:
    """Request an override: a decrease applies now, an increase needs two approvals."""
    done = get_ledger().overrides.request(
        body.scope,
        body.limit,
        body.value,
        duration=body.duration,
        duration_ms=body.duration_ms,
        ticket=body.ticket,
        by=_who(),
        reason=body.reason,
    )
    return respond(done.to_dict(), 201)


@bp.post("/overrides/<override_id>/approve")
@requires(Role.RISK_ADMIN)
@api(
    Approve,
    optional=True,
    answers={200: ("Approved; active after the second approval.", Override), **_STEP},
    path=_OVERRIDE_ID,
)
def approve(body: Approve, override_id: str) -> Response:
    """Approve a pending increase (the second distinct approver puts it in force)."""
    done = get_ledger().overrides.approve(override_id, by=_who(), firm=body.firm)
    return respond(done.to_dict())


@bp.post("/overrides/<override_id>/reject")
@requires(Role.RISK_ADMIN)
@api(Reject, answers={200: ("Rejected.", Override), **_STEP}, path=_OVERRIDE_ID)
def reject(body: Reject, override_id: str) -> Response:
    """Refuse a pending increase (anyone but the requester; reason required)."""
    done = get_ledger().overrides.reject(override_id, by=_who(), reason=body.reason, firm=body.firm)
    return respond(done.to_dict())


@bp.post("/overrides/<override_id>/cancel")
@requires(Role.RISK_ADMIN)
@api(
    Withdraw,
    optional=True,
    answers={200: ("Cancelled.", Override), **_STEP},
    path=_OVERRIDE_ID,
)
def cancel(body: Withdraw, override_id: str) -> Response:
    """Withdraw your own request, or end it now if it is in force."""
    done = get_ledger().overrides.cancel(override_id, by=_who(), reason=body.reason, firm=body.firm)
    return respond(done.to_dict())


@bp.get("/overrides")
@requires(Role.RISK_ADMIN)
@api(answers={200: ("Oldest first, per firm.", Overrides)})
def overrides() -> Response:
    """Every override with its status as of now."""
    return respond({"overrides": [o.to_dict() for o in get_ledger().overrides.list()]})


@bp.post("/stress")
@requires(Role.RISK_ADMIN)
@api(
    StressOn,
    answers={
        200: ("Set (or already so).", StressAnswer),
        404: ("No such node (UNKNOWN_NODE).", None),
    },
)
def stress_on(body: StressOn) -> Response:
    """Scale every money limit at and under a node by a factor in (0, 1]."""
    change = get_ledger().stress.on(body.scope, body.factor, by=_who(), reason=body.reason)
    return respond(change.to_dict())


@bp.delete("/stress")
@requires(Role.RISK_ADMIN)
@api(
    StressOff,
    answers={
        200: ("Lifted (or none was set: `already`).", StressAnswer),
        404: ("No such node, and no factor on it (UNKNOWN_NODE).", None),
    },
)
def stress_off(body: StressOff) -> Response:
    """Lift a node's stress factor."""
    change = get_ledger().stress.off(body.scope, by=_who(), reason=body.reason)
    return respond(change.to_dict())


@bp.get("/stress")
@requires(Role.RISK_ADMIN)
@api(answers={200: ("By firm and scope.", StressList)})
def stress_list() -> Response:
    """Every stress factor in force, with who, when and why."""
    return respond({"stress": [s.to_dict() for s in get_ledger().stress.list()]})
