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

from gateway.auth import requires
from gateway.connection import get_ledger
from gateway.error_handlers import handle_api_error
from gateway.errors import ApiCode, ApiError, invalid
from gateway.wire import read_body, respond, take
from ledger.overrides import OverrideRefused, UnknownOverride
from ledger.tokens import Principal, Role

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


def _texts(fields: dict[str, Any], *names: str) -> None:
    for name in names:
        if fields[name] is not None and not isinstance(fields[name], str):
            raise invalid(f"{name}: must be a text")


@bp.post("/overrides")
@requires(Role.RISK_ADMIN)
def request_override() -> Response:
    """Ask for an override of one limit at one node."""
    fields = take(
        read_body(),
        ("scope", "limit", "value", "ticket"),
        ("duration", "duration_ms", "reason"),
    )
    _texts(fields, "scope", "limit", "ticket", "duration", "reason")
    done = get_ledger().overrides.request(
        fields["scope"],
        fields["limit"],
        fields["value"],
        duration=fields["duration"],
        duration_ms=fields["duration_ms"],
        ticket=fields["ticket"],
        by=_who(),
        reason=fields["reason"],
    )
    return respond(done.to_dict(), 201)


@bp.post("/overrides/<override_id>/approve")
@requires(Role.RISK_ADMIN)
def approve(override_id: str) -> Response:
    """Approve a pending increase; the second approval puts it in force."""
    fields = take(read_body(required=False), (), ("firm",))
    _texts(fields, "firm")
    done = get_ledger().overrides.approve(override_id, by=_who(), firm=fields["firm"])
    return respond(done.to_dict())


@bp.post("/overrides/<override_id>/reject")
@requires(Role.RISK_ADMIN)
def reject(override_id: str) -> Response:
    """Refuse a pending increase."""
    fields = take(read_body(), ("reason",), ("firm",))
    _texts(fields, "reason", "firm")
    done = get_ledger().overrides.reject(
        override_id, by=_who(), reason=fields["reason"], firm=fields["firm"]
    )
    return respond(done.to_dict())


@bp.post("/overrides/<override_id>/cancel")
@requires(Role.RISK_ADMIN)
def cancel(override_id: str) -> Response:
    """Withdraw your own request, or end it now if it is in force."""
    fields = take(read_body(required=False), (), ("reason", "firm"))
    _texts(fields, "reason", "firm")
    done = get_ledger().overrides.cancel(
        override_id, by=_who(), reason=fields["reason"], firm=fields["firm"]
    )
    return respond(done.to_dict())


@bp.get("/overrides")
@requires(Role.RISK_ADMIN)
def overrides() -> Response:
    """Every override, with its status as of now."""
    return respond({"overrides": [o.to_dict() for o in get_ledger().overrides.list()]})


@bp.post("/stress")
@requires(Role.RISK_ADMIN)
def stress_on() -> Response:
    """Scale every money limit under a node by a factor in (0, 1]."""
    fields = take(read_body(), ("scope", "factor", "reason"))
    _texts(fields, "scope", "reason")
    change = get_ledger().stress.on(
        fields["scope"], fields["factor"], by=_who(), reason=fields["reason"]
    )
    return respond(change.to_dict())


@bp.delete("/stress")
@requires(Role.RISK_ADMIN)
def stress_off() -> Response:
    """Lift a node's stress factor."""
    fields = take(read_body(), ("scope", "reason"))
    _texts(fields, "scope", "reason")
    change = get_ledger().stress.off(fields["scope"], by=_who(), reason=fields["reason"])
    return respond(change.to_dict())


@bp.get("/stress")
@requires(Role.RISK_ADMIN)
def stress_list() -> Response:
    """Every stress factor in force."""
    return respond({"stress": [s.to_dict() for s in get_ledger().stress.list()]})
