"""The request bodies of the HTTP API, one model each: checked on arrival, shown in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from gateway.fields import (
    Body,
    Flag,
    Name,
    NodeId,
    Number,
    OneOf,
    OrderId,
    Qty,
    Says,
    Scope,
    Signed,
    Symbol,
    Text,
    digits,
)
from ledger.facade.client import MAX_BASKET_LEGS
from ledger.facade.overrides import OVERRIDABLE
from ledger.facade.states import STATES
from ledger.ops.drills import MAX_BURST

__all__ = [
    "NewOrder",
    "Replace",
    "Cancel",
    "Sweep",
    "Fill",
    "Release",
    "Basket",
    "Kill",
    "Unkill",
    "StateChange",
    "PriceBatch",
    "Resume",
    "OverrideRequest",
    "Approve",
    "Reject",
    "Withdraw",
    "StressOn",
    "StressOff",
    "Reconcile",
    "Drill",
    "KillDrill",
    "StormDrill",
    "MAX_RECORDS",
    "MAX_WAIT_S",
]

#: Records one reconcile request may carry; a larger drop copy goes through the CLI or in parts.
MAX_RECORDS = 10_000
#: The longest a storm drill's cancel phase may wait for the message windows here.
MAX_WAIT_S = 15

#: Optional in the bodies of an order's later steps: order ids are unique per firm.
Whose = Annotated[
    NodeId | None,
    Field(
        description="The order's account: says which firm's order the id is when the token is "
        "bound to no firm and several firms hold the id (else 400 INVALID_ORDER naming them)."
    ),
]


#: FIX tag 59 (ledger/policy/lifecycle.py): the library checks it; the caller gets its message.
TimeInForce = Annotated[
    Annotated[Name, WithJsonSchema({"type": "string", "enum": ["DAY", "GTC", "GTD", "IOC", "FOK"]})]
    | None,
    Field(
        description="DAY (the default) expires at the firm's trading-day roll, GTC never, GTD "
        "at expire_time; IOC and FOK are released at the first fill or release, or after the "
        "policy's grace. A replace takes DAY, GTC or GTD; left out, the order keeps its own.",
    ),
]
#: FIX tag 126.
ExpireTime = Annotated[
    Annotated[Name, WithJsonSchema({"type": "string", "format": "date-time"})] | None,
    Field(
        description="GTD only (and required with it): ISO 8601 in UTC, e.g. "
        "2026-11-30T21:00:00Z or 2026-11-30T21:00:00.250Z; must be after the ledger's time.",
    ),
]

#: FIX ExecInst E.
ReduceOnly = Annotated[
    Flag | None,
    Field(
        description="true: refused with REDUCE_ONLY unless the order shrinks the position at "
        "every node of its path (firm, desk, account, strategy, trader). On a replace, true "
        "flags the order from then on; left out, the order keeps its own flag.",
    ),
]


class _Terms(Body):
    """What a new order, a basket leg and a replace all carry (a field added here, all take)."""

    qty: Qty
    price: Number
    time_in_force: TimeInForce = None
    expire_time: ExpireTime = None
    reduce_only: ReduceOnly = None


class NewOrder(_Terms):
    """A new order (also a basket's leg)."""

    order_id: OrderId
    trader: NodeId
    strategy: NodeId
    account: NodeId
    symbol: Symbol
    side: Annotated[Name, Field(json_schema_extra={"enum": ["buy", "sell"]})]
    venue: Annotated[
        NodeId | None,
        Field(
            description="Where the order goes (e.g. XNAS); required by accounts whose policy "
            "lists venues."
        ),
    ] = None


class Replace(_Terms):
    """An open order's new total qty and price."""

    account: Whose = None


class Sweep(Body):
    """Nothing to say: the sweep covers the caller's firms."""


class Cancel(Body):
    account: Whose = None


class Fill(Body):
    fill_id: OrderId
    qty: Qty
    price: Number
    pnl: Annotated[
        Signed | None,
        Field(
            description="Realized P&L of the fill in major units (negative: a loss); counts "
            "toward max_daily_loss."
        ),
    ] = None
    account: Whose = None


class Release(Body):
    reason: Annotated[
        Text,
        Field(
            description="e.g. cancelled, venue_reject, expired",
            json_schema_extra={"maxLength": 200},
        ),
    ]
    account: Whose = None


class Basket(Body):
    """Orders reserved all or nothing."""

    basket_id: OrderId
    orders: Annotated[
        list[NewOrder],
        Field(min_length=1, max_length=MAX_BASKET_LEGS),
        Says(
            "must be a non-empty array of orders",
            too_many=f"a basket has at most {MAX_BASKET_LEGS} orders",
        ),
    ]


_REASON = Annotated[Text, Field(json_schema_extra={"maxLength": 500})]


class Unkill(Body):
    scope: Scope
    reason: _REASON


class Kill(Unkill):
    cancel_open: Annotated[
        Flag,
        Field(
            description="Also answer and publish one cancel instruction per open order under "
            "the scope."
        ),
    ] = False


class StateChange(Body):
    scope: Annotated[Text, Field(description="strategy:ID or account:ID")]
    state: Annotated[
        str, OneOf(STATES), Says(f"must be one of {', '.join(STATES)}; got {{input!r}}")
    ]
    reason: _REASON


class PriceItem(Body):
    symbol: Symbol
    price: Number


class PriceBatch(Body):
    prices: Annotated[
        list[PriceItem],
        Field(min_length=1),
        Says('must be a non-empty array of {"symbol", "price"} objects'),
    ]


class Resume(Body):
    reason: _REASON


class OverrideRequest(Body):
    """Give exactly one of duration and duration_ms."""

    scope: Annotated[Text, Field(description="KIND:ID, e.g. desk:EQ-CASH")]
    limit: Annotated[
        Text,
        Field(
            description="Must be set at the node by the policy.",
            json_schema_extra={"enum": list(OVERRIDABLE)},
        ),
    ]
    value: Annotated[
        Number, Field(description="A count, or an amount in major units for money limits.")
    ]
    ticket: Annotated[Text, Field(json_schema_extra={"maxLength": 200})]
    duration: Annotated[Text | None, Field(description="e.g. 30m, 8h (s, m, h)")] = None
    duration_ms: Annotated[int | None, Field(ge=1), Says("must be a positive whole number")] = None
    reason: _REASON | None = None


_FIRM = Annotated[
    Text | None, Field(description="Only when the override id exists in several firms.")
]


class Approve(Body):
    firm: _FIRM = None


class Reject(Body):
    reason: _REASON
    firm: _FIRM = None


class Withdraw(Body):
    reason: _REASON | None = None
    firm: _FIRM = None


class StressOn(Body):
    scope: Text
    factor: Annotated[Number, Field(description="A decimal in (0, 1], six places at most.")]
    reason: _REASON


class StressOff(Body):
    scope: Text
    reason: _REASON


class Reconcile(Body):
    records: Annotated[
        list[Any],
        Field(
            max_length=MAX_RECORDS,
            description="The drop copy: order records (order_id, account, trader, strategy, "
            "symbol, side, qty, price, status, optional venue) and fill records (order_id, "
            "fill_id, qty, price); qty and price as decimal strings. Format: README, "
            "Reconciliation.",
        ),
        Says(
            "must be a list of order and fill records",
            too_many=f"at most {MAX_RECORDS} per request",
        ),
    ]
    reason: Annotated[Text, Field(json_schema_extra={"maxLength": 200})] = "reconciliation"
    apply: Annotated[Flag, Field(description="Repair every difference reconcile can repair.")] = (
        False
    )


class Drill(Body):
    account: Annotated[
        NodeId | None, Field(description="The drill account (default: the policy's first).")
    ] = None


class KillDrill(Drill):
    scope: Annotated[
        Name | None,
        Field(
            description="What to kill (default: the drill account; its desk or firm in a "
            "drill firm)."
        ),
    ] = None


class StormDrill(Drill):
    max_orders: Annotated[
        int,
        Field(ge=1, le=MAX_BURST, description="Most new orders (and cancels) sent."),
        BeforeValidator(digits),
        Says(f"must be a whole number from 1 to {MAX_BURST}"),
    ] = 1000
    max_wait_s: Annotated[
        int,
        Field(ge=0, le=MAX_WAIT_S, description="Seconds the cancel phase may wait."),
        BeforeValidator(digits),
        Says(f"must be a whole number from 0 to {MAX_WAIT_S}"),
    ] = MAX_WAIT_S
