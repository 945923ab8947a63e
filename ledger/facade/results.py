"""Typed results. A reject is a value with a stable reason; failures are exceptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.facade.effective import format_factor
from ledger.reasons import Reason

__all__ = [
    "CLOSED_STATES",
    "ARCHIVE_BEHIND",
    "Breach",
    "Decision",
    "FillResult",
    "ReleaseResult",
    "KillResult",
    "UtilizationRow",
    "Kill",
]


#: States of an order that holds no reservation any more.
CLOSED_STATES = frozenset({"filled", "released"})
#: Reason.OK as the scripts answer it (bytes: the ledger's clients do not decode).
_OK = Reason.OK.value.encode()

#: The message of a script's RISK_UNAVAILABLE, which only audit.require_archive answers.
ARCHIVE_BEHIND = (
    "the audit archive is behind: the firm's unarchived audit backlog reached its bound "
    "(audit.require_archive); orders resume when the archiver catches up"
)


@dataclass(frozen=True)
class Breach:
    """A limit found exceeded: the reject itself, or a shadow limit recorded but not enforced."""

    reason: Reason
    scope: str | None
    limit: int | None
    used: int | None
    requested: int | None


@dataclass(frozen=True)
class Decision:
    """The answer to reserve, replace or cancel_request.

    ``limit``, ``used`` and ``requested`` are minor units for notional limits
    and counts for quantity, order and message limits.
    """

    order_id: str
    accepted: bool
    reason: Reason
    scope: str | None = None
    limit: int | None = None
    used: int | None = None
    requested: int | None = None
    #: Notional of the order (reserve) or the new reservation (replace), minor units.
    notional: int = 0
    #: True when this is the stored answer of an earlier identical reserve.
    replayed: bool = False
    shadow: tuple[Breach, ...] = ()
    #: Human-readable detail, e.g. which input was malformed.
    message: str = ""
    #: What the order is now, on a reserve: ``open`` once accepted; on a replay the
    #: stored order's state (``open``, ``filled``, ``released``, ``rejected``);
    #: None for other operations and for input refused before reaching the ledger.
    state: str | None = None

    @classmethod
    def reject(
        cls, order_id: str, reason: Reason, message: str = "", scope: str | None = None
    ) -> Decision:
        return cls(order_id=order_id, accepted=False, reason=reason, scope=scope, message=message)

    @classmethod
    def from_script(cls, order_id: str, raw: list[Any]) -> Decision:
        if len(raw) == 8 and raw[0] == _OK and not raw[6] and not raw[7]:
            # The common answer, an acceptance decided now with no shadow breach.
            return cls(order_id, True, Reason.OK, notional=int(raw[5]))
        reason = Reason(_text(raw[0]))
        end = 8 + 5 * int(raw[7])
        shadow = tuple(
            Breach(Reason(_text(raw[i])), _text(raw[i + 1]), raw[i + 2], raw[i + 3], raw[i + 4])
            for i in range(8, end, 5)
        )
        state, message = None, ""
        if reason is Reason.INVALID_ORDER and len(raw) > end:
            # A stored sum would have lost exactness: the script names it.
            message = _text(raw[end])
        elif len(raw) > end:
            # A replay carries the order's state now (lua/reserve-n.lua).
            state = _text(raw[end])
        if bool(raw[6]) and state in CLOSED_STATES:
            # The first answer was an acceptance, but nothing is reserved any
            # more: a retry must not read as one.
            why = _text(raw[end + 1]) if len(raw) > end + 1 else ""
            reason = Reason.ORDER_CLOSED
            message = (
                f"order {order_id} was reserved by an earlier identical call and is {state}"
                + (f" ({why})" if why else "")
                + " now; nothing is reserved for it"
            )
        return cls(
            order_id=order_id,
            accepted=reason is Reason.OK,
            reason=reason,
            scope=_text(raw[1]),
            limit=raw[2],
            used=raw[3],
            requested=raw[4],
            notional=int(raw[5]),
            replayed=bool(raw[6]),
            shadow=shadow,
            message=ARCHIVE_BEHIND if reason is Reason.RISK_UNAVAILABLE else message,
            state=state,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "decision": "accepted" if self.accepted else "rejected",
            "reason": self.reason.value,
            "scope": self.scope,
            "limit": self.limit,
            "used": self.used,
            "requested": self.requested,
            "notional": self.notional,
            "replayed": self.replayed,
            "state": self.state,
            "shadow": [
                {
                    "reason": b.reason.value,
                    "scope": b.scope,
                    "limit": b.limit,
                    "used": b.used,
                    "requested": b.requested,
                }
                for b in self.shadow
            ],
            "message": self.message,
        }


@dataclass(frozen=True)
class BasketDecision:
    """The answer to a basket: every leg reserved, or none.

    ``leg`` is the 1-based position of the leg that failed (0 when the basket
    as a whole broke ``max_basket_notional``, or when it was accepted);
    ``legs`` holds the decision of every leg decided, the failing one last.
    """

    basket_id: str
    accepted: bool
    reason: Reason
    leg: int = 0
    legs: tuple[Decision, ...] = ()
    scope: str | None = None
    limit: int | None = None
    used: int | None = None
    requested: int | None = None
    message: str = ""

    @property
    def failing_order(self) -> str | None:
        return self.legs[-1].order_id if self.leg > 0 and self.legs else None

    @property
    def replayed(self) -> bool:
        return bool(self.legs) and all(d.replayed for d in self.legs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "basket_id": self.basket_id,
            "decision": "accepted" if self.accepted else "rejected",
            "reason": self.reason.value,
            "leg": self.leg,
            "failing_order": self.failing_order,
            "scope": self.scope,
            "limit": self.limit,
            "used": self.used,
            "requested": self.requested,
            "replayed": self.replayed,
            "message": self.message,
            "legs": [d.to_dict() for d in self.legs],
        }


@dataclass(frozen=True)
class FillResult:
    order_id: str
    fill_id: str
    reason: Reason
    leaves: int = 0
    cum_qty: int = 0
    #: Notional still reserved for the open part of the order, minor units.
    reserved: int = 0
    #: Notional of this fill, minor units (0 for a duplicate).
    fill_notional: int = 0
    duplicate: bool = False
    #: The fill took the order beyond its qty (recorded all the same).
    overfill: bool = False
    #: This fill tripped the strategy's fill throttle and disabled it.
    disabled_strategy: bool = False
    #: Why a fill was refused (e.g. a sum that would lose exactness).
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "decision": "accepted" if self.ok else "rejected",
            "reason": self.reason.value,
            "fill_id": self.fill_id,
            "leaves": self.leaves,
            "cum_qty": self.cum_qty,
            "disabled_strategy": self.disabled_strategy,
            "reserved": self.reserved,
            "fill_notional": self.fill_notional,
            "duplicate": self.duplicate,
            "overfill": self.overfill,
            "message": self.message,
        }


@dataclass(frozen=True)
class ReleaseResult:
    order_id: str
    reason: Reason
    released: int = 0
    already_closed: bool = False
    #: Why the release was refused (e.g. an order id held by several firms).
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "decision": "accepted" if self.ok else "rejected",
            "reason": self.reason.value,
            "released": self.released,
            "already_closed": self.already_closed,
            "message": self.message,
        }


@dataclass(frozen=True)
class KillResult:
    scope: str
    #: The switch was already in the asked state.
    already: bool
    #: Open orders under the scope, to be cancelled at the venue (kill only).
    open_orders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kill:
    """An active kill switch."""

    scope: str
    by: str | None
    reason: str | None
    at_ms: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "by": self.by, "reason": self.reason, "at_ms": self.at_ms}


@dataclass(frozen=True)
class UtilizationRow:
    """One node and one limit: how much of it is used.

    ``limit`` is the limit in force (an override, scaled by stress; see
    :mod:`ledger.facade.effective`), ``policy_limit`` the policy's value beside it.
    """

    scope: str
    limit_name: str
    used: int
    limit: int
    shadow: bool = False
    #: The policy's value (None: the same as ``limit``).
    policy_limit: int | None = None
    #: The override in force, e.g. ``OV-7``.
    override: str | None = None
    #: The stress factor applied, in millionths.
    factor: int | None = None

    @property
    def percent(self) -> float:
        # Display only; accounting stays in integers.
        return 100.0 * self.used / self.limit if self.limit else (100.0 if self.used else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "limit_name": self.limit_name,
            "used": self.used,
            "limit": self.limit,
            "percent": round(self.percent, 2),
            "shadow": self.shadow,
            "policy_limit": self.limit if self.policy_limit is None else self.policy_limit,
            "override": self.override,
            "factor": None if self.factor is None else format_factor(self.factor),
        }


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value
