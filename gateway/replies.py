"""The answers of the HTTP API, one model each, for the OpenAPI document.

Answers are built by the ledger's results (``to_dict``), not by these
models; ``tests/gateway/test_gateway_schema.py`` checks real answers against
them, so a field added to one without the other fails there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import ApiCode
from ledger import Reason
from ledger.facade.states import STATES
from ledger.ops.drills import DRILLS

__all__ = [
    "Answer",
    "Error",
    "Decision",
    "BasketDecision",
    "FillResult",
    "ReleaseResult",
    "KillAnswer",
    "Kills",
    "SweepResult",
    "StateAnswer",
    "States",
    "Utilization",
    "PricesSet",
    "ReferencePrices",
    "ResumeAnswer",
    "Override",
    "Overrides",
    "StressAnswer",
    "StressList",
    "ReconcileReport",
    "DrillReport",
    "Status",
]


class Answer(BaseModel):
    """An answer's documented fields; none other may appear."""

    model_config = ConfigDict(extra="forbid")


def _enum(values: Any) -> Any:
    return Field(json_schema_extra={"enum": [getattr(v, "value", v) for v in values]})


Accepted = Literal["accepted", "rejected"]
Code = Annotated[str, _enum([*Reason, *ApiCode])]
State = Annotated[str, _enum(STATES)]


class Error(Answer):
    """Every refusal: the shape of a rejected decision."""

    decision: Accepted
    reason: Code
    scope: str | None = Field(None, description="The node whose limit decided.")
    limit: int | None = None
    used: int | None = None
    requested: int | None = None
    order_id: str | None = None
    message: str


class Breach(Answer):
    reason: str
    scope: str | None
    limit: int | None
    used: int | None
    requested: int | None


class Decision(Error):
    """The answer to an order: money values are integer minor units of the policy currency."""

    notional: int | None = Field(None, description="Notional reserved, minor units.")
    replayed: bool = Field(False, description="The stored answer of an identical earlier order.")
    state: Literal["open", "filled", "released", "rejected"] | None = Field(
        None,
        description="New orders and replays: what the order is now. A replay of an order "
        "since filled or released is ORDER_CLOSED (409), never an acceptance.",
    )
    shadow: list[Breach] = Field([], description="Shadow limits breached (recorded, not enforced).")
    message: str = ""


class BasketDecision(Answer):
    basket_id: str
    decision: Accepted
    reason: str
    leg: int = Field(
        description="1-based position of the failing order; 0 when accepted or when the "
        "basket total broke max_basket_notional."
    )
    failing_order: str | None
    scope: str | None
    limit: int | None
    used: int | None
    requested: int | None
    replayed: bool
    message: str
    legs: list[Decision]


class FillResult(Answer):
    order_id: str
    fill_id: str
    decision: Accepted
    reason: str
    leaves: int
    cum_qty: int
    reserved: int
    fill_notional: int
    duplicate: bool
    overfill: bool
    disabled_strategy: bool = Field(description="This fill tripped the fill throttle.")
    message: str


class ReleaseResult(Answer):
    order_id: str
    decision: Accepted
    reason: str
    released: int
    already_closed: bool
    message: str


class CancelInstruction(Answer):
    action: Literal["cancel"]
    order_id: str
    account: str
    strategy: str
    trader: str
    symbol: str
    side: Literal["buy", "sell"]
    leaves_qty: int = Field(description="Quantity still working: order qty less filled.")


class KillAnswer(Answer):
    op: Literal["kill", "unkill"]
    scope: str
    by: str
    reason: str
    at_ms: int
    already: bool
    open_orders: list[str] = Field(description="Open orders under the scope, to cancel.")
    cancel_open: bool | None = Field(
        None, description="Present (true) when cancel instructions were asked."
    )
    cancels: list[CancelInstruction] | None = Field(
        None,
        description="With cancel_open: one per order still open, also published on the "
        "events channel for every gateway instance.",
    )
    published: bool


class KillSwitch(Answer):
    scope: str
    by: str | None
    reason: str | None
    at_ms: int | None


class SweepResult(Answer):
    firms: dict[str, int] = Field(description="Firm -> expired orders released by this call.")
    expired: int


class Kills(Answer):
    kills: list[KillSwitch]


class StateAnswer(Answer):
    scope: str
    state: State
    previous: State = Field(description="The runtime state before; enabled when none was set.")
    already: bool
    policy_state: State = Field(
        description="What the policy sets; applies when no runtime state is set."
    )
    by: str
    reason: str


class ScopeState(Answer):
    scope: str
    firm: str
    state: State
    source: Literal["runtime", "policy"]
    policy_state: State
    by: str | None
    reason: str | None
    at_ms: int | None
    auto: bool = Field(description="Set by an automatic trigger such as the fill throttle.")
    cause: str | None


class States(Answer):
    states: list[ScopeState]


class UtilizationRow(Answer):
    scope: str
    limit_name: str
    used: int
    limit: int = Field(description="In force: override, stress.")
    percent: float
    shadow: bool
    policy_limit: int
    override: str | None
    factor: str | None


class Utilization(Answer):
    scopes: list[str]
    currency: str | None
    minor_units: int | None
    rows: list[UtilizationRow]


class PriceSet(Answer):
    firm: str
    symbol: str
    price: str
    status: Literal["set", "halted", "already_halted"]
    jump_bps: int | None = Field(
        description="Move from the previous price, rounded up; null for a first price."
    )


class PricesSet(Answer):
    by: str
    results: list[PriceSet] = Field(
        description="One per firm and symbol, firms sorted, symbols as sent."
    )
    halted: list[str] = Field(description="Symbols this batch halted in at least one firm.")


class Halt(Answer):
    by: str = Field(description="The feed whose price halted it.")
    why: str
    at_ms: int
    from_: str = Field(alias="from")
    to: str


class ReferencePrice(Answer):
    firm: str
    symbol: str
    price: str | None
    set_at_ms: int | None
    age_ms: int | None = Field(description="By server time.")
    max_age_ms: int | None
    stale: bool | None = Field(description="Older than max_age_ms or missing; null without one.")
    halted: bool
    halt: Halt | None


class ReferencePrices(Answer):
    prices: list[ReferencePrice]


class ResumeAnswer(Answer):
    symbol: str
    by: str
    reason: str
    resumed: list[str] = Field(
        description="Firms in which the symbol was halted and now trades again."
    )
    already: bool = Field(description="Halted nowhere: nothing changed.")


class Override(Answer):
    """Money values are integer minor units of the policy currency."""

    id: str = Field(pattern="^OV-[1-9][0-9]*$")
    firm: str
    scope: str
    limit: str
    value: int
    policy_value: int = Field(description="When it was requested.")
    direction: Literal["increase", "decrease"]
    duration_ms: int
    ticket: str
    requested_by: str
    reason: str | None
    approvers: list[str]
    status: Literal["pending", "active", "expired", "superseded", "rejected", "cancelled"]
    requested_at_ms: int
    approved_at_ms: int | None
    until_ms: int | None = Field(description="Server time from which it no longer applies.")
    decided_by: str | None
    decided_reason: str | None
    decided_at_ms: int | None


class Overrides(Answer):
    overrides: list[Override]


class StressAnswer(Answer):
    op: Literal["on", "off"]
    scope: str
    firm: str
    factor: str | None
    previous: str | None
    already: bool
    by: str
    reason: str
    at_ms: int


class Stress(Answer):
    scope: str
    firm: str
    factor: str = Field(description="A decimal in (0, 1], e.g. 0.5.")
    factor_millionths: int
    by: str
    reason: str
    at_ms: int


class StressList(Answer):
    stress: list[Stress]


class Difference(Answer):
    kind: Literal[
        "missing_order",
        "closed_in_ledger",
        "open_in_ledger",
        "not_in_drop_copy",
        "missing_fill",
        "qty_differs",
        "price_differs",
        "unknown_account",
        "unknown_order",
    ]
    order_id: str
    account: str | None = None
    ledger: str | None = None
    venue: str | None = None


class ReconcileReport(Answer):
    by: str
    reason: str
    ok: bool = Field(description="Nothing differed.")
    applied: bool
    orders: int
    fills: int
    differences: list[Difference]
    repairs: list[dict[str, Any]]
    over_limit: list[dict[str, Any]] = Field(
        description="Enforced limits a reconciled order's nodes exceed."
    )


class Probe(Answer):
    gateway: str
    order_id: str
    case: str
    expected: str
    status: int | None
    reason: str | None
    ms: float
    held: bool
    note: str = ""


class DrillReport(Answer):
    drill: Annotated[str, _enum(DRILLS)]
    run_id: str
    by: str = Field(description="The calling token's name (audited).")
    outcome: Literal["held", "failed"]
    scope: str
    target: dict[str, Any]
    probes: list[Probe]
    failures: list[str]
    notes: list[str]


class Status(Answer):
    status: str
    reason: str | None = None
    message: str | None = None
