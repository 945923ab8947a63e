"""``/v1/reference-prices`` and ``/v1/symbols/<symbol>/resume``: prices and the jump halt.

* ``POST /v1/reference-prices`` (market-data, risk-admin):
  ``{"prices": [{"symbol": "AAPL", "price": "187.25"}, ...]}``, stored in every
  firm; a price that jumps too far halts its symbol in that firm. The whole
  batch is checked first: one bad entry refuses it all and changes nothing.
* ``GET /v1/reference-prices[?symbol=AAPL&symbol=...]`` (ops, risk-admin,
  desk-head): price, age and halt per firm and symbol.
* ``POST /v1/symbols/<symbol>/resume`` (ops): ``{"reason": ...}``; lifts the
  halt in every firm, recorded with the token's name and the reason.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

import gateway.scoping as scoping
from gateway.api import api
from gateway.auth import requires
from gateway.bodies import PriceBatch, Resume
from gateway.connection import get_ledger
from gateway.errors import invalid
from gateway.fields import SYMBOL_PATTERN
from gateway.replies import PricesSet, ReferencePrices, ResumeAnswer
from gateway.wire import respond
from ledger.facade.prices import PriceStatus
from ledger.store.tokens import Principal, Role

__all__ = ["bp"]

bp = Blueprint("prices", __name__, url_prefix="/v1")


def _batch(batch: PriceBatch) -> dict[str, Any]:
    """Symbol -> price; a symbol given twice is refused."""
    out: dict[str, Any] = {}
    for i, item in enumerate(batch.prices):
        if item.symbol in out:
            raise invalid(f"prices[{i}]: {item.symbol} is given twice")
        out[item.symbol] = item.price
    return out


@bp.post("/reference-prices")
@requires(Role.MARKET_DATA, Role.RISK_ADMIN)
@api(PriceBatch, answers={200: ("Stored; the status of each firm and symbol.", PricesSet)})
def set_prices(body: PriceBatch) -> Response:
    """Set reference prices in every firm; a jump beyond the firm's max_jump_pct halts the symbol.

    The price is stored even when it halts. The batch is checked whole first.
    """
    batch = _batch(body)
    principal: Principal = g.principal
    rows = get_ledger().prices.set(batch, by=principal.name)
    halted = sorted({r.symbol for r in rows if r.status is PriceStatus.HALTED})
    return respond({"by": principal.name, "results": [r.to_dict() for r in rows], "halted": halted})


@bp.get("/reference-prices")
@requires(Role.OPS, Role.RISK_ADMIN, Role.DESK_HEAD)
@api(
    answers={
        200: ("One row per firm and symbol.", ReferencePrices),
        400: ("Malformed symbol or unknown parameter (INVALID_REQUEST).", None),
    },
    query={"symbol": "Repeat for several; without it, every symbol."},
)
def get_prices() -> Response:
    """Reference prices with age, staleness and halt, per firm and symbol."""
    unknown = sorted(set(request.args) - {"symbol"})
    if unknown:
        raise invalid("unknown query parameter(s): " + ", ".join(unknown))
    symbols = request.args.getlist("symbol") or None
    lg = get_ledger()
    rows = lg.prices.get(symbols)
    desk_view = scoping.view(g.principal, lg.policy(refresh=True))
    if desk_view is not None:
        rows = desk_view.prices(rows)
    return respond({"prices": [r.to_dict() for r in rows]})


@bp.post("/symbols/<path:symbol>/resume")
@requires(Role.OPS)
@api(
    Resume,
    answers={200: ("Resumed, or halted nowhere.", ResumeAnswer)},
    path={"symbol": {"schema": {"type": "string", "pattern": SYMBOL_PATTERN}}},
)
def resume(body: Resume, symbol: str) -> Response:
    """Lift a symbol's halt in every firm (recorded with who and why).

    A symbol that is not halted is left alone (already).
    """
    principal: Principal = g.principal
    result = get_ledger().prices.resume(symbol, by=principal.name, reason=body.reason)
    return respond(result.to_dict())
