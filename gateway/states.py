"""``/v1/states``: the runtime state of strategies and accounts.

* ``POST /v1/states`` (ops): ``{scope, state, reason}`` with ``scope``
  ``strategy:ID`` or ``account:ID`` and ``state`` one of ``disabled``,
  ``reduce_only``, ``enabled``; the token's principal is recorded as who.
  Re-enabling something the fill throttle disabled works for any ops person
  (a ``system:`` identity never can, and token names cannot be one); a
  refused re-enable is a 403 ``REENABLE_REFUSED``.
* ``GET /v1/states`` (ops, desk-head): every strategy and account that is not
  simply enabled, runtime or by policy, with who, why and an automatic
  disable's cause.
"""

from __future__ import annotations

from flask import Blueprint, Response, g

import gateway.scoping as scoping
from gateway.auth import requires
from gateway.connection import get_ledger
from gateway.errors import invalid
from gateway.wire import read_body, respond, take
from ledger.states import STATES
from ledger.tokens import Principal, Role

__all__ = ["bp"]

bp = Blueprint("states", __name__, url_prefix="/v1")


@bp.post("/states")
@requires(Role.OPS)
def set_state() -> Response:
    """Disable, reduce-only or re-enable a strategy or account."""
    fields = take(read_body(), ("scope", "state", "reason"))
    for name in ("scope", "reason"):
        if not isinstance(fields[name], str):
            raise invalid(f"{name}: must be a text")
    if fields["state"] not in STATES:
        raise invalid(f"state: must be one of {', '.join(STATES)}; got {fields['state']!r}")
    principal: Principal = g.principal
    change = get_ledger().states.set(
        fields["scope"], fields["state"], by=principal.name, reason=fields["reason"]
    )
    return respond({**change.to_dict(), "by": principal.name, "reason": fields["reason"]})


@bp.get("/states")
@requires(Role.OPS, Role.DESK_HEAD)
def states() -> Response:
    """Every strategy and account that is disabled or reduce-only (desk heads: theirs)."""
    lg = get_ledger()
    found = lg.states.list()
    desk_view = scoping.view(g.principal, lg.policy(refresh=True))
    if desk_view is not None:
        found = desk_view.switches(found)
    return respond({"states": [s.to_dict() for s in found]})
