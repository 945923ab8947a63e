"""Cancel instructions for the open orders a kill found.

A kill stops new orders at once, but orders already at the venue stay live
until someone cancels them there. ``kill-5.lua`` answers the ids of the open
orders under the scope; this module reads each order's hash
(``P:{F}:order:ID``, lua/includes/path.lua) and turns it into one instruction
a gateway can send to its venue session: which order, on whose behalf, and how
much is still working.

The orders are read after the kill, in one pipelined round trip: an order
that filled or was released in between is no longer open and gets no
instruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from ledger.facade.core import LedgerCore
from ledger.facade.results import KillResult

__all__ = ["CancelInstruction", "cancel_instructions"]


@dataclass(frozen=True)
class CancelInstruction:
    """Cancel one open order at the venue."""

    order_id: str
    account: str
    strategy: str
    trader: str
    symbol: str
    side: str
    #: Quantity still working: order qty less what has filled.
    leaves_qty: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": "cancel",
            "order_id": self.order_id,
            "account": self.account,
            "strategy": self.strategy,
            "trader": self.trader,
            "symbol": self.symbol,
            "side": self.side,
            "leaves_qty": self.leaves_qty,
        }


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def cancel_instructions(lg: LedgerCore, result: KillResult) -> list[CancelInstruction]:
    """One instruction per order of ``result`` that is still open, in the kill's order."""
    order_ids = list(dict.fromkeys(result.open_orders))
    if not order_ids:
        return []
    # A global kill spans firms and answers bare ids; any other scope is one firm's.
    firms = lg._known_firms() if result.scope == "global" else [lg._firm_of_scope(result.scope)]
    pairs = [(oid, f) for oid in order_ids for f in firms]
    with lg._redis_errors():
        pipe = lg.redis.pipeline(transaction=False)
        for oid, f in pairs:
            pipe.hmget(lg.keys.order(f, oid), "st", "o", "qty", "cum")
        rows = pipe.execute()
    out = []
    for (oid, _), (st, packed, qty, cum) in zip(pairs, rows, strict=True):
        if _s(st) != "open" or packed is None:
            continue
        path = msgpack.unpackb(packed, raw=False)
        out.append(
            CancelInstruction(
                order_id=oid,
                account=path[2],
                strategy=path[3],
                trader=path[4],
                symbol=path[5],
                side=path[6],
                leaves_qty=int(qty) - int(cum or 0),
            )
        )
    return out
