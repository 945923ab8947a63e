"""Governed overrides: one limit at one node changed for a while, under four eyes.

A decrease (below the policy value) takes effect as soon as it is asked for.
An increase waits for two approvals from two people other than the
requester and runs from the second one. Either lapses by itself: reserve
ignores an entry of the controls hash ``o|S`` once server time reaches its
``u`` (docs/controls-layout.md). Only a limit the policy sets at the node can
be overridden, for at most the policy's ``overrides.max_duration`` (8 h
unless set).

The scripts (lua/requestOverride-4.lua, lua/decideOverride-4.lua) check every
step against the live policy and the request's state atomically and write
each one, refused ones included, to the firm's audit stream. Ids are
``OV-<n>``, counted per firm; an id found in two firms needs ``firm=``.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import msgpack

from ledger.errors import InvalidInput, LedgerError, UnknownScope
from ledger.facade.core import LedgerCore
from ledger.facade.inputs import node_scope, text
from ledger.policy.durations import parse_duration_ms
from ledger.policy.model import MONEY_LIMITS
from ledger.policy.money import parse_money, parse_qty
from ledger.reasons import Reason

__all__ = [
    "OVERRIDABLE",
    "MONEY_OVERRIDES",
    "Status",
    "Override",
    "Overrides",
    "OverrideRefused",
    "UnknownOverride",
]

#: Limits an override may change, counts first: every number a check compares
#: with (the duplicate window is a time span, not a budget).
OVERRIDABLE: Final = ("max_order_qty", "max_open_orders", *MONEY_LIMITS)
#: Those of :data:`OVERRIDABLE` given in money (major units in, minor units stored).
MONEY_OVERRIDES: Final = frozenset(MONEY_LIMITS)
_ID: Final = re.compile(r"OV-[1-9][0-9]{0,15}")


class UnknownOverride(LedgerError, LookupError):
    """No firm has an override with this id."""


class OverrideRefused(InvalidInput):
    """The step does not fit the override's state (``field`` ``state``) or the person
    taking it (``field`` ``by``: the requester approving, the same approver twice,
    someone else cancelling). Nothing changed."""


class Status(StrEnum):
    """Where an override stands, as of the server time of the answer."""

    #: An increase waiting for its approvals.
    PENDING = "pending"
    #: In force until ``until_ms``.
    ACTIVE = "active"
    #: Ran until ``until_ms``, which has passed.
    EXPIRED = "expired"
    #: Approved, but a later request for the same limit and scope is in force.
    SUPERSEDED = "superseded"
    #: Refused by an approver; never in force.
    REJECTED = "rejected"
    #: Withdrawn by its requester, pending or while in force.
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Override:
    """One override request. Money values are minor units of the policy currency."""

    id: str
    firm: str
    scope: str
    limit: str
    value: int
    #: The policy value when it was requested.
    policy_value: int
    #: ``increase`` or ``decrease`` against the policy value.
    direction: str
    duration_ms: int
    ticket: str
    requested_by: str
    reason: str | None
    approvers: tuple[str, ...]
    status: Status
    requested_at_ms: int
    #: When it went in force (the second approval for an increase); None before.
    approved_at_ms: int | None
    #: Server time from which it no longer applies; None until it is in force.
    until_ms: int | None
    #: Who rejected or cancelled it, why and when.
    decided_by: str | None = None
    decided_reason: str | None = None
    decided_at_ms: int | None = None

    @classmethod
    def from_record(cls, firm: str, rec: dict[str, Any], status: Status) -> Override:
        approvers = rec.get("approvers") or ()
        return cls(
            id=rec["id"],
            firm=firm,
            scope=rec["scope"],
            limit=rec["limit"],
            value=int(rec["value"]),
            policy_value=int(rec["old"]),
            direction=rec["dir"],
            duration_ms=int(rec["for_ms"]),
            ticket=rec["ticket"],
            requested_by=rec["by"],
            reason=rec.get("why") or None,
            approvers=tuple(approvers.values() if isinstance(approvers, dict) else approvers),
            status=status,
            requested_at_ms=int(rec["at"]),
            approved_at_ms=_opt_int(rec.get("approved_at")),
            until_ms=_opt_int(rec.get("u")),
            decided_by=rec.get("dby") or None,
            decided_reason=rec.get("dwhy") or None,
            decided_at_ms=_opt_int(rec.get("dat")),
        )

    @property
    def money(self) -> bool:
        return self.limit in MONEY_OVERRIDES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "firm": self.firm,
            "scope": self.scope,
            "limit": self.limit,
            "value": self.value,
            "policy_value": self.policy_value,
            "direction": self.direction,
            "duration_ms": self.duration_ms,
            "ticket": self.ticket,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "approvers": list(self.approvers),
            "status": self.status.value,
            "requested_at_ms": self.requested_at_ms,
            "approved_at_ms": self.approved_at_ms,
            "until_ms": self.until_ms,
            "decided_by": self.decided_by,
            "decided_reason": self.decided_reason,
            "decided_at_ms": self.decided_at_ms,
        }


def _opt_int(value: Any) -> int | None:
    return None if value is None or value is False else int(value)


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _status(rec: dict[str, Any], now_ms: int, in_force_id: str | None) -> Status:
    if rec["st"] != "active":
        return Status(rec["st"])
    if int(rec["u"]) <= now_ms:
        return Status.EXPIRED
    return Status.ACTIVE if in_force_id == rec["id"] else Status.SUPERSEDED


def _duration(duration_ms: int | None, duration: str | None) -> int:
    if (duration_ms is None) == (duration is None):
        raise InvalidInput("duration", "give exactly one of duration_ms or duration")
    if duration is not None:
        return parse_duration_ms(duration, "duration")
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, int) or duration_ms <= 0:
        raise InvalidInput("duration_ms", f"must be a positive whole number, got {duration_ms!r}")
    return duration_ms


class Overrides:
    """``ledger.overrides``: request, approve, reject, cancel and list overrides."""

    def __init__(self, ledger: LedgerCore) -> None:
        self._lg = ledger

    def request(
        self,
        scope: str,
        limit: str,
        value: str | int,
        *,
        duration_ms: int | None = None,
        duration: str | None = None,
        ticket: str,
        by: str,
        reason: str | None = None,
    ) -> Override:
        """Ask to set ``limit`` at ``scope`` to ``value`` for a while.

        ``value`` is a count, or for money limits an amount in major units
        (``"15000000"``). Give the duration as ``duration_ms`` or as text
        (``duration="30m"``).

        Raises:
            InvalidInput: malformed input, a limit the policy does not set at
                the node, a duration over the maximum, or the policy value itself.
            UnknownScope: the scope is not in the live policy.
        """
        scope = node_scope(scope)
        if limit not in OVERRIDABLE:
            raise InvalidInput("limit", "must be one of " + ", ".join(OVERRIDABLE))
        for_ms = _duration(duration_ms, duration)
        ticket, by = text("ticket", ticket, 200), text("by", by, 200)
        why = "" if reason is None else text("reason", reason)
        lg = self._lg
        firm = lg._firm_of_scope(scope)
        amount = self._amount(firm, limit, value)
        raw = lg._call(
            lg.scripts.request_override,
            self._keys(firm),
            [scope, limit, amount, for_ms, ticket, by, why, lg.audit_maxlen],
        )
        return self._answer(firm, raw)

    def approve(self, override_id: str, *, by: str, firm: str | None = None) -> Override:
        """Approve a pending increase; the second approval puts it in force.

        Raises:
            OverrideRefused: not pending, ``by`` is its requester or approved it already.
            UnknownOverride: no such id.
        """
        return self._decide(override_id, "approve", text("by", by, 200), "", firm)

    def reject(
        self, override_id: str, *, by: str, reason: str, firm: str | None = None
    ) -> Override:
        """Refuse a pending increase (anyone but its requester)."""
        return self._decide(
            override_id, "reject", text("by", by, 200), text("reason", reason), firm
        )

    def cancel(
        self, override_id: str, *, by: str, reason: str | None = None, firm: str | None = None
    ) -> Override:
        """Withdraw a pending request, or end a running one now (its requester only)."""
        why = "" if reason is None else text("reason", reason)
        return self._decide(override_id, "cancel", text("by", by, 200), why, firm)

    def get(self, override_id: str, *, firm: str | None = None) -> Override:
        """One override, its status as of now."""
        firm = self._locate(override_id, firm)
        return next(o for o in self._firm_overrides([firm]) if o.id == override_id)

    def minor_units(self, firm: str) -> int | None:
        """Minor units of ``firm``'s live policy (to show money values); None without one."""
        raw = self._lg._call(self._lg.redis.hget, self._lg.keys.policy(firm), "meta|mu")
        return int(raw) if raw is not None else None

    def list(self) -> builtins.list[Override]:
        """Every override of every firm: pending, active, expired and decided, oldest first."""
        return self._firm_overrides(self._lg._known_firms())

    # -- plumbing ---------------------------------------------------------------

    def _keys(self, firm: str) -> builtins.list[str]:
        k = self._lg.keys
        return [k.policy(firm), k.controls(firm), k.overrides(firm), k.audit(firm)]

    def _amount(self, firm: str, limit: str, value: object) -> int:
        if limit not in MONEY_OVERRIDES:
            return parse_qty(value, "value")
        units = self.minor_units(firm)
        if units is None:
            raise UnknownScope(f"firm {firm} has no live policy")
        amount = parse_money(value, units, "value")
        if amount <= 0:
            raise InvalidInput("value", "must be greater than zero")
        return amount

    def _decide(self, override_id: str, op: str, by: str, why: str, firm: str | None) -> Override:
        lg = self._lg
        firm = self._locate(override_id, firm)
        raw = lg._call(
            lg.scripts.decide_override,
            self._keys(firm),
            [override_id, op, by, why, lg.audit_maxlen],
        )
        return self._answer(firm, raw)

    def _locate(self, override_id: object, firm: str | None) -> str:
        if not isinstance(override_id, str) or not _ID.fullmatch(override_id):
            raise InvalidInput("id", f"must be an override id such as OV-7, got {override_id!r}")
        lg = self._lg
        firms = [firm] if firm is not None else lg._known_firms()
        with lg._redis_errors():
            pipe = lg.redis.pipeline(transaction=False)
            for f in firms:
                pipe.hexists(lg.keys.overrides(f), override_id)
            found = [f for f, hit in zip(firms, pipe.execute(), strict=True) if hit]
        if not found:
            where = f" in firm {firm}" if firm is not None else ""
            raise UnknownOverride(f"{override_id}: no such override{where}")
        if len(found) > 1:
            raise InvalidInput(
                "id", f"{override_id} exists in firms {', '.join(found)}; name the firm"
            )
        return found[0]

    def _answer(self, firm: str, raw: builtins.list[Any]) -> Override:
        code = _s(raw[0])
        if code != Reason.OK.value:
            field, message = _s(raw[1]), _s(raw[2])
            if code == Reason.UNKNOWN_NODE.value:
                raise UnknownScope(f"{message} (firm {firm})")
            if field == "id":
                raise UnknownOverride(message)
            if field in ("state", "by"):
                raise OverrideRefused(field, message)
            raise InvalidInput(field, message)
        rec = msgpack.unpackb(raw[1], raw=False)
        in_force = rec["id"] if int(raw[3]) else None
        return Override.from_record(firm, rec, _status(rec, int(raw[2]), in_force))

    def _firm_overrides(self, firms: builtins.list[str]) -> builtins.list[Override]:
        """Every override of ``firms`` and the server time, read in one round trip."""
        lg = self._lg
        with lg._redis_errors():
            pipe = lg.redis.pipeline(transaction=not lg.keys.cluster)
            for f in firms:
                pipe.hgetall(lg.keys.overrides(f))
                pipe.hgetall(lg.keys.controls(f))
            pipe.time()
            raw = pipe.execute()
        seconds, micros = raw[-1]
        now = int(seconds) * 1000 + int(micros) // 1000
        out = []
        for i, firm in enumerate(firms):
            registry, controls = raw[2 * i], raw[2 * i + 1]
            in_force = {}
            for name, blob in controls.items():
                field = _s(name)
                if field.startswith("o|"):
                    for limit, entry in msgpack.unpackb(blob, raw=False).items():
                        in_force[(field[2:], limit)] = entry["id"]
            for name, blob in registry.items():
                if _s(name) == "seq":
                    continue
                rec = msgpack.unpackb(blob, raw=False)
                status = _status(rec, now, in_force.get((rec["scope"], rec["limit"])))
                out.append(Override.from_record(firm, rec, status))
        return sorted(out, key=lambda o: (o.firm, int(o.id[3:])))
