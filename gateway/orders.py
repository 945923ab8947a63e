"""``/v1/orders``: the pre-trade check and an order's life after it (order-entry role).

Status codes follow the decision's reason: accepted 201 (new order) or 200
(anything else, and the replay of an order still open); ``INVALID_ORDER`` 400;
``UNKNOWN_ORDER`` 404; ``ORDER_CLOSED`` 409 (also the replay of an order since
filled or released: ``state`` says which);
``RISK_UNAVAILABLE`` 503 (fail closed: nothing the ledger did not reserve is
ever accepted); any other reject, a control said no, 403.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, g, request

import gateway.metrics as metrics
from gateway.api import api
from gateway.auth import caller_firms, requires
from gateway.bodies import Cancel, Fill, NewOrder, Release, Replace
from gateway.connection import get_ledger
from gateway.fields import ID_PATTERN
from gateway.replies import Decision as DecisionAnswer
from gateway.replies import FillResult, ReleaseResult
from gateway.wire import peek, respond
from ledger import Decision, Order, Reason
from ledger.store.tokens import Role

__all__ = ["bp", "status_for", "order_of"]

bp = Blueprint("orders", __name__, url_prefix="/v1/orders")

_STATUS = {
    Reason.INVALID_ORDER: 400,
    Reason.UNKNOWN_ORDER: 404,
    Reason.ORDER_CLOSED: 409,
    Reason.RISK_UNAVAILABLE: 503,
}


def status_for(reason: Reason, ok_status: int = 200) -> int:
    """HTTP status of a decision with ``reason``."""
    return ok_status if reason is Reason.OK else _STATUS.get(reason, 403)


@bp.before_request
def _start() -> None:
    g.t0 = time.perf_counter()
    # Known before the token check, so that every answer (503 included) names the order.
    order_id = (request.view_args or {}).get("order_id") or peek("order_id")
    if isinstance(order_id, str):
        g.order_id = order_id


@bp.after_request
def _observe(response: Response) -> Response:
    op = (request.endpoint or "orders.unknown").rpartition(".")[2]
    result = "accepted" if response.status_code in (200, 201) else "rejected"
    metrics.get().order_answered(
        op, time.perf_counter() - g.get("t0", time.perf_counter()), result, g.get("reason")
    )
    return response


def order_of(body: NewOrder) -> Order:
    """The library's order of a checked body; a field left out takes the library's default."""
    return Order(**{k: v for k, v in body.__dict__.items() if v is not None})


def _whose(account: str | None) -> dict[str, Any]:
    """Whose order the path's id is: the caller's firms, and the account if the body names one.

    Order ids are unique per firm. A token bound to firms only ever reaches
    their orders (another firm's id answers 404 like one never used); an
    unbound token whose id several firms hold is refused until it names the
    order's ``account``.
    """
    return {"firm": caller_firms(g.principal), "account": account}


def _answer(decision: Decision, ok_status: int = 200) -> Response:
    g.reason = decision.reason.value
    return respond(decision.to_dict(), status_for(decision.reason, ok_status))


#: The order id in the path of an order's later steps.
_ORDER_ID = {
    "order_id": {
        "schema": {"type": "string", "pattern": ID_PATTERN},
        "description": "URL-encode '#', '+' and '/' in ids. Order ids are unique per firm: a "
        "token bound to firms reaches only their orders (another firm's id is 404 "
        "UNKNOWN_ORDER, as one never used); an unbound token names the account of an id several "
        "firms hold (the body's optional account).",
    }
}
_ORDER_ANSWERS = {
    403: ("Rejected by a control.", DecisionAnswer),
    404: ("UNKNOWN_ORDER.", DecisionAnswer),
    409: ("ORDER_CLOSED.", DecisionAnswer),
}


@bp.post("")
@requires(Role.ORDER_ENTRY)
@api(
    NewOrder,
    answers={
        201: ("Accepted and reserved.", DecisionAnswer),
        200: (
            "A replay of an identical earlier order that is still open (replayed true, state "
            "open): nothing new was reserved.",
            DecisionAnswer,
        ),
        403: (
            "Rejected by a control (KILL_SWITCH, GROSS_LIMIT, ...), or the token's role is not "
            "order-entry.",
            DecisionAnswer,
        ),
        409: (
            "ORDER_CLOSED: a replay of an identical earlier order that has since been filled or "
            "released (state says which); nothing is reserved for it.",
            DecisionAnswer,
        ),
    },
)
def reserve(order: NewOrder) -> Response:
    """Pre-trade check and reserve a new order."""
    decision = get_ledger().reserve(
        order_of(order), actor=g.principal.name, firm=caller_firms(g.principal)
    )
    # A replay created nothing: 200 while the order is open, 409 once it is closed.
    return _answer(decision, ok_status=200 if decision.replayed else 201)


@bp.post("/<path:order_id>/replace")
@requires(Role.ORDER_ENTRY)
@api(
    Replace,
    answers={200: ("Accepted; the reservation moved.", DecisionAnswer), **_ORDER_ANSWERS},
    path=_ORDER_ID,
)
def replace(body: Replace, order_id: str) -> Response:
    """Modify an open order's qty and price (re-checked)."""
    return _answer(
        get_ledger().replace(
            order_id,
            body.qty,
            body.price,
            actor=g.principal.name,
            time_in_force=body.time_in_force,
            expire_time=body.expire_time,
            reduce_only=bool(body.reduce_only),
            **_whose(body.account),
        )
    )


@bp.post("/<path:order_id>/cancel")
@requires(Role.ORDER_ENTRY)
@api(
    Cancel,
    optional=True,
    answers={
        200: ("Counted.", DecisionAnswer),
        **_ORDER_ANSWERS,
        403: ("MESSAGE_RATE.", DecisionAnswer),
    },
    path=_ORDER_ID,
)
def cancel(body: Cancel, order_id: str) -> Response:
    """Count a cancel request (the reservation stays until the venue confirms: release)."""
    return _answer(
        get_ledger().cancel_request(order_id, actor=g.principal.name, **_whose(body.account))
    )


@bp.post("/<path:order_id>/fills")
@requires(Role.ORDER_ENTRY)
@api(
    Fill,
    answers={200: ("Recorded.", FillResult), 404: ("UNKNOWN_ORDER.", FillResult)},
    path=_ORDER_ID,
)
def fill(body: Fill, order_id: str) -> Response:
    """Record a fill (a fill id seen before changes nothing)."""
    r = get_ledger().fill(
        order_id,
        body.fill_id,
        body.qty,
        body.price,
        actor=g.principal.name,
        pnl=body.pnl,
        **_whose(body.account),
    )
    g.reason = r.reason.value
    return respond(r.to_dict(), status_for(r.reason))


@bp.post("/<path:order_id>/release")
@requires(Role.ORDER_ENTRY)
@api(
    Release,
    answers={
        200: ("Released (or already closed).", ReleaseResult),
        404: ("UNKNOWN_ORDER.", ReleaseResult),
    },
    path=_ORDER_ID,
)
def release(body: Release, order_id: str) -> Response:
    """Free what the order still reserves: cancel confirmed, venue reject, expired."""
    r = get_ledger().release(order_id, body.reason, actor=g.principal.name, **_whose(body.account))
    g.reason = r.reason.value
    return respond(r.to_dict(), status_for(r.reason))
