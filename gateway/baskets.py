"""``/v1/baskets``: a list of orders reserved all-or-nothing (order-entry role).

A basket is one script call: every leg is reserved or none is. One failing
leg rejects the whole basket, and the answer names the leg (``leg``, its
1-based position, and ``failing_order``) with its reason; ``BASKET_LIMIT``
means the basket's total broke ``max_basket_notional`` at ``scope``.
Status codes as for single orders: 201 accepted, 200 the replay of a basket
whose legs are all still open, 409 ``ORDER_CLOSED`` the replay of one with a
leg since filled or released, 400 bad input, 403 refused by a control, 503
ledger unavailable.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g

from gateway import get_ledger
from gateway.auth import caller_firms, requires
from gateway.errors import ApiError, invalid
from gateway.orders import ORDER_FIELDS, ORDER_OPTIONAL, order_of, status_for
from gateway.wire import read_body, respond, take
from ledger.client import MAX_BASKET_LEGS
from ledger.order import Order
from ledger.tokens import Role

__all__ = ["bp"]

bp = Blueprint("baskets", __name__, url_prefix="/v1/baskets")


def _legs(raw: Any) -> list[Order]:
    if not isinstance(raw, list) or not raw:
        raise invalid("orders: must be a non-empty array of orders")
    if len(raw) > MAX_BASKET_LEGS:
        raise invalid(f"orders: a basket has at most {MAX_BASKET_LEGS} orders")
    legs = []
    for i, leg in enumerate(raw, start=1):
        if not isinstance(leg, dict):
            raise invalid(f"orders[{i}]: must be an object")
        try:
            legs.append(order_of(take(leg, ORDER_FIELDS, ORDER_OPTIONAL)))
        except ApiError as exc:
            # take() speaks of fields; the leg's position makes the message findable.
            raise invalid(f"orders[{i}]: {exc.message}") from exc
    return legs


@bp.post("")
@requires(Role.ORDER_ENTRY)
def reserve_basket() -> Response:
    """Reserve every order of the basket, or none."""
    body = read_body()
    unknown = sorted(str(k) for k in body if k not in ("basket_id", "orders"))
    if unknown:
        raise invalid("unknown field(s): " + ", ".join(unknown))
    basket_id = body.get("basket_id")
    if not isinstance(basket_id, str):
        raise invalid("basket_id: required, a string")
    result = get_ledger().reserve_basket(
        _legs(body.get("orders")),
        basket_id=basket_id,
        actor=g.principal.name,
        firm=caller_firms(g.principal),
    )
    g.reason = result.reason.value
    return respond(result.to_dict(), status_for(result.reason, 200 if result.replayed else 201))
