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

from gateway import get_ledger, metrics
from gateway.auth import caller_firms, requires
from gateway.wire import peek, read_body, respond, take
from ledger.order import Order
from ledger.reasons import Reason
from ledger.results import Decision
from ledger.tokens import Role

__all__ = ["bp", "status_for", "ORDER_FIELDS", "ORDER_OPTIONAL"]

bp = Blueprint("orders", __name__, url_prefix="/v1/orders")

ORDER_FIELDS = ("order_id", "trader", "strategy", "account", "symbol", "side", "qty", "price")
#: Fields an order may carry besides the required ones.
ORDER_OPTIONAL = ("venue",)
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


def _whose(fields: dict[str, Any]) -> dict[str, Any]:
    """Whose order the path's id is: the caller's firms, and the account if the body names one.

    Order ids are unique per firm. A token bound to firms only ever reaches
    their orders (another firm's id answers 404 like one never used); an
    unbound token whose id several firms hold is refused until it names the
    order's ``account``.
    """
    return {"firm": caller_firms(g.principal), "account": fields.get("account")}


def _answer(decision: Decision, ok_status: int = 200) -> Response:
    g.reason = decision.reason.value
    return respond(decision.to_dict(), status_for(decision.reason, ok_status))


@bp.post("")
@requires(Role.ORDER_ENTRY)
def reserve() -> Response:
    """Check and reserve a new order."""
    fields = take(read_body(), ORDER_FIELDS, ORDER_OPTIONAL)
    decision = get_ledger().reserve(
        Order(**fields), actor=g.principal.name, firm=caller_firms(g.principal)
    )
    # A replay created nothing: 200 while the order is open, 409 once it is closed.
    return _answer(decision, ok_status=200 if decision.replayed else 201)


@bp.post("/<path:order_id>/replace")
@requires(Role.ORDER_ENTRY)
def replace(order_id: str) -> Response:
    """Modify an open order to a new total qty and price."""
    fields = take(read_body(), ("qty", "price"), ("account",))
    return _answer(
        get_ledger().replace(
            order_id, fields["qty"], fields["price"], actor=g.principal.name, **_whose(fields)
        )
    )


@bp.post("/<path:order_id>/cancel")
@requires(Role.ORDER_ENTRY)
def cancel(order_id: str) -> Response:
    """Count a cancel request; the reservation stays until the venue confirms (release)."""
    fields = take(read_body(required=False), (), ("account",))
    return _answer(get_ledger().cancel_request(order_id, actor=g.principal.name, **_whose(fields)))


@bp.post("/<path:order_id>/fills")
@requires(Role.ORDER_ENTRY)
def fill(order_id: str) -> Response:
    """Record a fill; a fill id seen before changes nothing."""
    fields = take(read_body(), ("fill_id", "qty", "price"), ("pnl", "account"))
    r = get_ledger().fill(
        order_id,
        fields["fill_id"],
        fields["qty"],
        fields["price"],
        actor=g.principal.name,
        pnl=fields["pnl"],
        **_whose(fields),
    )
    g.reason = r.reason.value
    return respond(r.to_dict(), status_for(r.reason))


@bp.post("/<path:order_id>/release")
@requires(Role.ORDER_ENTRY)
def release(order_id: str) -> Response:
    """Free what the order still reserves: cancel confirmed, venue reject, expired."""
    fields = take(read_body(), ("reason",), ("account",))
    r = get_ledger().release(order_id, fields["reason"], actor=g.principal.name, **_whose(fields))
    g.reason = r.reason.value
    return respond(r.to_dict(), status_for(r.reason))
