"""``/v1/kill`` and ``/v1/utilization``: the operations routes.

* ``POST /v1/kill`` / ``DELETE /v1/kill`` (ops): ``{scope, reason}``; the
  answer lists the open orders under the scope, to cancel at the venue. Each
  change is also published on the events channel (:mod:`gateway.events`).
  A kill with ``"cancel_open": true`` also answers and publishes one cancel
  instruction per open order (:mod:`ledger.facade.cancels`), so that every instance
  can cancel at its venue sessions the orders it routed.
* ``GET /v1/kill`` (ops, desk-head): active kills with who, when and why.
* ``POST /v1/sweep`` (ops): release every order whose time in force has run
  out (each decision already retires a few by itself); each expiry is audited
  and published on the events channel by the ledger.
* ``GET /v1/utilization?scope=...`` (desk-head for its own desks, ops,
  risk-admin): per node and limit, used against limit.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from flask import Blueprint, Response, current_app, g, request

import gateway.metrics as metrics
import gateway.scoping as scoping
from gateway.api import api
from gateway.auth import caller_firms, requires
from gateway.bodies import Kill, Sweep, Unkill
from gateway.connection import get_ledger
from gateway.errors import ApiCode, ApiError, invalid
from gateway.events import publish
from gateway.replies import KillAnswer, Kills, SweepResult, Utilization
from gateway.wire import respond
from ledger.errors import LedgerUnavailable
from ledger.facade.cancels import cancel_instructions
from ledger.facade.client import Ledger
from ledger.policy import KINDS
from ledger.store.tokens import Principal, Role

__all__ = ["bp", "visible_scopes"]

bp = Blueprint("ops", __name__, url_prefix="/v1")


def _check_scope(scope: Any) -> str:
    if not isinstance(scope, str):
        raise invalid("scope: must be a string such as 'desk:EQ-CASH' or 'global'")
    kind, _, node_id = scope.partition(":")
    if scope != "global" and (kind not in KINDS or not node_id):
        raise invalid(
            f"scope: must be 'global' or KIND:ID with KIND one of {', '.join(KINDS)}; got {scope!r}"
        )
    return scope


def _switch(op: str, body: Unkill) -> Response:
    scope = _check_scope(body.scope)
    cancel_open = isinstance(body, Kill) and body.cancel_open
    principal: Principal = g.principal
    lg = get_ledger()
    act = lg.kill if op == "kill" else lg.unkill
    result = act(scope, by=principal.name, reason=body.reason)
    if not result.already:
        metrics.get().kills.labels(op=op, kind=scope.partition(":")[0]).inc()
    event = {
        "type": op,
        "scope": scope,
        "by": principal.name,
        "reason": body.reason,
        "at_ms": _stored_at_ms(lg, op, scope),
        "already": result.already,
        "open_orders": list(result.open_orders),
        "instance": f"{lg.actor}:{os.getpid()}",
    }
    if cancel_open:
        event["cancel_open"] = True
        event["cancels"] = [c.to_dict() for c in cancel_instructions(lg, result)]
    delivered = publish(lg.redis, current_app.config["PREFIX"], event)
    answer = {k: v for k, v in event.items() if k not in ("type", "instance")}
    return respond({"op": op, **answer, "published": delivered is not None})


def _stored_at_ms(lg: Ledger, op: str, scope: str) -> int:
    """When the ledger recorded the switch, by server time, as ``GET /v1/kill`` shows it.

    A kill answers its stored time (the first kill's, if the scope was already
    killed); an unkill, which stores no record, the server's time just after it.
    Never the gateway's clock, which may be skewed against the server's.
    """
    if op == "kill":
        for k in lg.kills():
            if k.scope == scope and k.at_ms is not None:
                return k.at_ms
    try:
        seconds, micros = lg.redis.time()
    except redis.RedisError as exc:
        raise LedgerUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return int(seconds) * 1000 + int(micros) // 1000


_SWITCHED = {
    200: ("Done; lists the open orders under the scope to cancel.", KillAnswer),
    404: ("The scope names no node of the policy (UNKNOWN_NODE).", None),
}


@bp.post("/kill")
@requires(Role.OPS)
@api(Kill, answers=_SWITCHED)
def kill(body: Kill) -> Response:
    """Set a kill switch: stop every new order under a scope."""
    return _switch("kill", body)


@bp.delete("/kill")
@requires(Role.OPS)
@api(Unkill, answers=_SWITCHED)
def unkill(body: Unkill) -> Response:
    """Lift a kill switch.

    Refused (403 REENABLE_REFUSED) for the identity that set an automatic kill.
    """
    return _switch("unkill", body)


@bp.post("/sweep")
@requires(Role.OPS)
@api(Sweep, optional=True, answers={200: ("Released what was due.", SweepResult)})
def sweep(body: Sweep) -> Response:
    """Release the orders due by server time now, in the caller's firms.

    Each decision already retires a few by itself; each expiry is audited and
    published on the events channel by the ledger.
    """
    done = get_ledger().sweep(firm=caller_firms(g.principal))
    return respond({"firms": done, "expired": sum(done.values())})


@bp.get("/kill")
@requires(Role.OPS, Role.DESK_HEAD)
@api(answers={200: ("The active kills.", Kills)})
def kills() -> Response:
    """Active kill switches with who, when and why (a desk head: those that stop its desks)."""
    lg = get_ledger()
    found = lg.kills()
    desk_view = scoping.view(g.principal, lg.policy(refresh=True))
    if desk_view is not None:
        found = desk_view.switches(found)
    return respond({"kills": [k.to_dict() for k in found]})


def visible_scopes(principal: Principal, lg: Ledger, scope: str | None) -> list[str]:
    """The scopes ``principal`` asks to see; a 403 for a desk-head outside its desks."""
    if scope is not None:
        scope = _check_scope(scope)
    if principal.role is not Role.DESK_HEAD:
        return [scope or "global"]
    policy = lg.policy(refresh=True)
    if scope is None:
        return [
            f"desk:{d}"
            for d in sorted(principal.desks)
            if policy is not None and policy.node(f"desk:{d}") is not None
        ]
    if scoping.DeskView(policy, principal.desks).sees(scope):
        return [scope]
    raise ApiError(
        403,
        ApiCode.FORBIDDEN,
        f"{scope} is not under the desks of this token ({', '.join(sorted(principal.desks))})",
    )


@bp.get("/utilization")
@requires(Role.DESK_HEAD, Role.OPS, Role.RISK_ADMIN)
@api(
    answers={
        200: ("Rows per node and limit.", Utilization),
        400: ("Malformed scope or unknown parameter (INVALID_REQUEST).", None),
        403: ("Wrong role, or a desk-head asking outside its desks.", None),
        404: ("No such node (UNKNOWN_NODE).", None),
    },
    query={
        "scope": "global or KIND:ID, e.g. desk:EQ-CASH; without it global (a desk-head: its desks)"
    },
)
def utilization() -> Response:
    """Used against limit per node and limit."""
    unknown = sorted(set(request.args) - {"scope"})
    if unknown:
        raise invalid("unknown query parameter(s): " + ", ".join(unknown))
    lg = get_ledger()
    scopes = visible_scopes(g.principal, lg, request.args.get("scope"))
    found = [row for s in scopes for row in lg.utilization(s)]
    policy = lg.policy()
    desk_view = scoping.view(g.principal, policy)
    rows = [row.to_dict() for row in (desk_view.rows(found) if desk_view else found)]
    return respond(
        {
            "scopes": scopes,
            "currency": policy.currency if policy else None,
            "minor_units": policy.minor_units if policy else None,
            "rows": rows,
        }
    )
