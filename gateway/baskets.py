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

from flask import Blueprint, Response, g

from gateway.api import api
from gateway.auth import caller_firms, requires
from gateway.bodies import Basket
from gateway.connection import get_ledger
from gateway.orders import order_of, status_for
from gateway.replies import BasketDecision
from gateway.wire import respond
from ledger.store.tokens import Role

__all__ = ["bp"]

bp = Blueprint("baskets", __name__, url_prefix="/v1/baskets")


@bp.post("")
@requires(Role.ORDER_ENTRY)
@api(
    Basket,
    answers={
        201: ("Every order accepted and reserved.", BasketDecision),
        200: (
            "A replay of an identical earlier basket whose legs are all still open: nothing "
            "new was reserved.",
            BasketDecision,
        ),
        403: (
            "Rejected: one leg failed a control (named by leg and failing_order), or "
            "BASKET_LIMIT; nothing was reserved.",
            BasketDecision,
        ),
        409: (
            "ORDER_CLOSED: a replay of an identical earlier basket with a leg since filled or "
            "released (named by leg and failing_order, with its state).",
            BasketDecision,
        ),
    },
)
def reserve_basket(basket: Basket) -> Response:
    """Reserve a basket of orders, all or nothing."""
    result = get_ledger().reserve_basket(
        [order_of(leg) for leg in basket.orders],
        basket_id=basket.basket_id,
        actor=g.principal.name,
        firm=caller_firms(g.principal),
    )
    g.reason = result.reason.value
    return respond(result.to_dict(), status_for(result.reason, 200 if result.replayed else 201))
