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
from gateway.auth import requires
from gateway.connection import get_ledger
from gateway.errors import invalid
from gateway.wire import read_body, respond, take
from ledger.prices import PriceStatus
from ledger.tokens import Principal, Role

__all__ = ["bp"]

bp = Blueprint("prices", __name__, url_prefix="/v1")


def _batch(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(str(k) for k in body if k != "prices")
    if unknown:
        raise invalid("unknown field(s): " + ", ".join(unknown))
    items = body.get("prices")
    if not isinstance(items, list) or not items:
        raise invalid('prices: must be a non-empty array of {"symbol", "price"} objects')
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        where = f"prices[{i}]"
        if not isinstance(item, dict):
            raise invalid(f'{where}: must be an object {{"symbol": ..., "price": ...}}')
        extra = sorted(str(k) for k in item if k not in ("symbol", "price"))
        missing = [f for f in ("symbol", "price") if item.get(f) is None]
        if extra or missing:
            what = "unknown field(s): " + ", ".join(extra) if extra else "missing " + missing[0]
            raise invalid(f"{where}: {what}")
        symbol, price = item["symbol"], item["price"]
        if not isinstance(symbol, str):
            raise invalid(f"{where}.symbol: must be a string")
        if isinstance(price, float):
            raise invalid(
                f"{where}.price: numbers must be strings or integers, not floats "
                f"({price!r} cannot be kept exact)"
            )
        if symbol in out:
            raise invalid(f"{where}: {symbol} is given twice")
        out[symbol] = price
    return out


@bp.post("/reference-prices")
@requires(Role.MARKET_DATA, Role.RISK_ADMIN)
def set_prices() -> Response:
    """Store reference prices in every firm; halt symbols that jumped too far."""
    batch = _batch(read_body())
    principal: Principal = g.principal
    rows = get_ledger().prices.set(batch, by=principal.name)
    halted = sorted({r.symbol for r in rows if r.status is PriceStatus.HALTED})
    return respond({"by": principal.name, "results": [r.to_dict() for r in rows], "halted": halted})


@bp.get("/reference-prices")
@requires(Role.OPS, Role.RISK_ADMIN, Role.DESK_HEAD)
def get_prices() -> Response:
    """Reference prices, their age and any halt, per firm and symbol."""
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
def resume(symbol: str) -> Response:
    """Lift a symbol's halt in every firm."""
    fields = take(read_body(), ("reason",))
    if not isinstance(fields["reason"], str):
        raise invalid("reason: must be a text")
    principal: Principal = g.principal
    result = get_ledger().prices.resume(symbol, by=principal.name, reason=fields["reason"])
    return respond(result.to_dict())
