"""Stress state: shrink every money limit under a node by a factor, until lifted.

``on`` stores the factor as whole millionths in the firm's controls hash
(``x|S``, docs/controls-layout.md; kept across policy loads). Reserve then
scales each money limit of a node by the smallest factor set at the node or
above it on the order's path, rounding down. Every change goes through
lua/setStress-3.lua and is audited.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import msgpack

from ledger.errors import InvalidInput, UnknownScope
from ledger.facade.core import LedgerCore
from ledger.facade.effective import FACTOR_SCALE, format_factor
from ledger.facade.inputs import node_scope, text
from ledger.policy.money import parse_money
from ledger.reasons import Reason

__all__ = [
    "FACTOR_SCALE",
    "parse_factor",
    "format_factor",
    "StressFactor",
    "StressChange",
    "Stress",
]

_DIGITS: Final = 6


def parse_factor(value: object) -> int:
    """A factor in (0, 1] (``"0.5"``, at most six decimals) as millionths."""
    millionths = parse_money(value, _DIGITS, "factor")
    if not 0 < millionths <= FACTOR_SCALE:
        raise InvalidInput("factor", f"must be greater than 0 and at most 1, got {value!r}")
    return millionths


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class StressFactor:
    """A stress factor in force at one node."""

    scope: str
    firm: str
    factor_millionths: int
    by: str
    reason: str
    at_ms: int

    @property
    def factor(self) -> Decimal:
        return Decimal(format_factor(self.factor_millionths))

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "firm": self.firm,
            "factor": format_factor(self.factor_millionths),
            "factor_millionths": self.factor_millionths,
            "by": self.by,
            "reason": self.reason,
            "at_ms": self.at_ms,
        }


@dataclass(frozen=True)
class StressChange:
    """What :meth:`Stress.on` or :meth:`Stress.off` did."""

    op: str
    scope: str
    firm: str
    #: The factor now in force (None after ``off``).
    factor_millionths: int | None
    #: The factor before (None when there was none).
    previous_millionths: int | None
    by: str
    reason: str
    at_ms: int

    @property
    def already(self) -> bool:
        """Nothing changed: the same factor was set, or none was there to lift."""
        return self.previous_millionths == self.factor_millionths

    def to_dict(self) -> dict[str, Any]:
        def show(v: int | None) -> str | None:
            return None if v is None else format_factor(v)

        return {
            "op": self.op,
            "scope": self.scope,
            "firm": self.firm,
            "factor": show(self.factor_millionths),
            "previous": show(self.previous_millionths),
            "already": self.already,
            "by": self.by,
            "reason": self.reason,
            "at_ms": self.at_ms,
        }


class Stress:
    """``ledger.stress``: put nodes under stress, lift it, list it."""

    def __init__(self, ledger: LedgerCore) -> None:
        self._lg = ledger

    def on(self, scope: str, factor: str | int | Decimal, *, by: str, reason: str) -> StressChange:
        """Scale every money limit at and under ``scope`` by ``factor`` (0 < factor <= 1).

        Raises:
            InvalidInput: a malformed scope or factor, an empty ``by`` or ``reason``.
            UnknownScope: the scope is not in the live policy.
        """
        scope = node_scope(scope)
        millionths = parse_factor(factor)
        by, reason = text("by", by), text("reason", reason)
        firm = self._lg._firm_of_scope(scope)
        return self._set("on", firm, scope, millionths, by, reason)

    def off(self, scope: str, *, by: str, reason: str) -> StressChange:
        """Lift the stress factor of ``scope`` (also of a node the policy has dropped)."""
        scope = node_scope(scope)
        by, reason = text("by", by), text("reason", reason)
        return self._set("off", self._firm(scope), scope, None, by, reason)

    def list(self) -> builtins.list[StressFactor]:
        """Every stress factor in force, by firm and scope."""
        lg = self._lg
        firms = lg._known_firms()
        with lg._redis_errors():
            pipe = lg.redis.pipeline(transaction=False)
            for f in firms:
                pipe.hgetall(lg.keys.controls(f))
            controls = pipe.execute()
        out = []
        for firm, entries in zip(firms, controls, strict=True):
            for name, blob in entries.items():
                field = _s(name)
                if field.startswith("x|"):
                    rec = msgpack.unpackb(blob, raw=False)
                    out.append(
                        StressFactor(
                            field[2:], firm, int(rec["f"]), rec["by"], rec["why"], rec["t"]
                        )
                    )
        return sorted(out, key=lambda s: (s.firm, s.scope))

    def _set(
        self, op: str, firm: str, scope: str, millionths: int | None, by: str, reason: str
    ) -> StressChange:
        lg = self._lg
        k = lg.keys
        raw = lg._call(
            lg.scripts.set_stress,
            [k.policy(firm), k.controls(firm), k.audit(firm)],
            [op, scope, "" if millionths is None else millionths, by, reason, lg.audit_maxlen],
        )
        code = _s(raw[0])
        if code == Reason.UNKNOWN_NODE.value:
            raise UnknownScope(f"{scope}: no such node in firm {firm}'s policy")
        if code != Reason.OK.value:
            raise InvalidInput("factor", "must be a whole number of millionths in 1..1000000")
        previous = int(raw[1]) if raw[1] is not None else None
        return StressChange(op, scope, firm, millionths, previous, by, reason, int(raw[2]))

    def _firm(self, scope: str) -> str:
        lg = self._lg
        try:
            return lg._firm_of_scope(scope)
        except UnknownScope:
            # A node dropped from the policy may still carry a factor to lift.
            firms = lg._known_firms()
            with lg._redis_errors():
                pipe = lg.redis.pipeline(transaction=False)
                for f in firms:
                    pipe.hexists(lg.keys.controls(f), f"x|{scope}")
                hits = [f for f, hit in zip(firms, pipe.execute(), strict=True) if hit]
            if not hits:
                raise
            return hits[0]
