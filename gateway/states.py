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
from gateway.api import api
from gateway.auth import requires
from gateway.bodies import StateChange
from gateway.connection import get_ledger
from gateway.replies import StateAnswer, States
from gateway.wire import respond
from ledger.store.tokens import Principal, Role

__all__ = ["bp"]

bp = Blueprint("states", __name__, url_prefix="/v1")


@bp.post("/states")
@requires(Role.OPS)
@api(
    StateChange,
    answers={
        200: ("Done (or already so: `already`).", StateAnswer),
        403: (
            "Wrong role (FORBIDDEN), or a re-enable by the identity that set the state "
            "automatically (REENABLE_REFUSED). Nothing changed.",
            None,
        ),
        404: ("No such strategy or account (UNKNOWN_NODE).", None),
    },
)
def set_state(body: StateChange) -> Response:
    """Disable, reduce-only or re-enable a strategy or account.

    The state wins over the policy's and survives policy loads; `enabled` lifts it.
    The token's name is recorded as who.
    """
    principal: Principal = g.principal
    change = get_ledger().states.set(body.scope, body.state, by=principal.name, reason=body.reason)
    return respond({**change.to_dict(), "by": principal.name, "reason": body.reason})


@bp.get("/states")
@requires(Role.OPS, Role.DESK_HEAD)
@api(answers={200: ("The states.", States)})
def states() -> Response:
    """Strategies and accounts not simply enabled, with who and why (desk heads: theirs).

    Runtime states and policy states; an automatic disable (fill throttle) shows its cause.
    """
    lg = get_ledger()
    found = lg.states.list()
    desk_view = scoping.view(g.principal, lg.policy(refresh=True))
    if desk_view is not None:
        found = desk_view.switches(found)
    return respond({"states": [s.to_dict() for s in found]})
