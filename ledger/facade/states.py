"""Runtime state of strategies and accounts: disabled, reduce-only, or enabled again.

A runtime state lives in the firm's controls hash (``s|S``, see
docs/controls-layout.md), survives policy loads and wins over the ``state``
the policy gives a node. Ops set it by hand (``auto = 0``); the fill throttle
sets ``disabled`` itself (``auto = 1``, ``by = "system:fill-throttle"``, with
its ``cause``). Every change goes through ``lua/setState-3.lua`` and is audited.

Re-enabling is the guarded direction, here as for kills (:meth:`Ledger.unkill`):
it takes a reason and a person. ``system:`` identities belong to automatic
triggers, which may stop trading but never restart it, and whoever set a
state automatically cannot be the one to lift it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from ledger.errors import InvalidInput, ReenableRefused, UnknownScope
from ledger.facade.core import LedgerCore
from ledger.facade.inputs import node_scope, text
from ledger.reasons import Reason

__all__ = [
    "SYSTEM_PREFIX",
    "STATES",
    "ScopeState",
    "StateChange",
    "States",
    "check_reenabler",
    "audit_refused",
]

#: Identities of automatic triggers (the fill throttle, watchdogs).
SYSTEM_PREFIX: Final = "system:"
#: What a strategy or an account can be; ``enabled`` means no restriction.
STATES: Final = ("enabled", "disabled", "reduce_only")
#: The kinds of node that carry a state.
STATE_KINDS: Final = ("strategy", "account")
_OPS: Final = {"enabled": "enable", "disabled": "disable", "reduce_only": "reduce_only"}


def check_reenabler(by: str, trigger: str | None = None) -> None:
    """Raise :class:`ReenableRefused` unless ``by`` may lift what ``trigger`` set automatically."""
    if by.startswith(SYSTEM_PREFIX):
        raise ReenableRefused(
            f"by: {by!r} is a system identity; only a person may re-enable "
            f"({SYSTEM_PREFIX} identities are reserved for automatic triggers)"
        )
    if trigger is not None and by == trigger:
        raise ReenableRefused(f"by: {by!r} set this automatically; someone else must re-enable it")


def audit_refused(lg: LedgerCore, firms: Iterable[str | None], record: dict[str, Any]) -> None:
    """Record a refused re-enable (``code`` REENABLE_REFUSED) in each firm's audit stream
    (None: the global one), when it is refused before any script could record it."""
    blob = msgpack.packb({**record, "code": Reason.REENABLE_REFUSED.value})
    with lg._redis_errors():
        pipe = lg.redis.pipeline(transaction=False)
        for firm in dict.fromkeys(firms):
            pipe.xadd(lg.keys.audit(firm), {"m": blob}, maxlen=lg.audit_maxlen, approximate=True)
        pipe.execute()


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class StateChange:
    """What :meth:`States.set` did."""

    scope: str
    #: The runtime state asked for.
    state: str
    #: The runtime state before (``enabled`` when none was set).
    previous: str
    #: Nothing changed: the scope was already in the asked state.
    already: bool
    #: The state the live policy gives the node (applies once no runtime state is set).
    policy_state: str = "enabled"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "state": self.state,
            "previous": self.previous,
            "already": self.already,
            "policy_state": self.policy_state,
        }


@dataclass(frozen=True)
class ScopeState:
    """A strategy or account that is not simply enabled, and why."""

    scope: str
    firm: str
    #: The state in force: the runtime state if one is set, else the policy's.
    state: str
    #: ``runtime`` (set by ops or an automatic trigger) or ``policy``.
    source: str
    #: The policy's own state for the node (``enabled`` if it sets none or lost the node).
    policy_state: str = "enabled"
    by: str | None = None
    reason: str | None = None
    at_ms: int | None = None
    #: Set by an automatic trigger; ``cause`` says what tripped it.
    auto: bool = False
    cause: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "firm": self.firm,
            "state": self.state,
            "source": self.source,
            "policy_state": self.policy_state,
            "by": self.by,
            "reason": self.reason,
            "at_ms": self.at_ms,
            "auto": self.auto,
            "cause": self.cause,
        }


class States:
    """``ledger.states``: set, lift and list the runtime states of one ledger."""

    def __init__(self, ledger: LedgerCore) -> None:
        self._lg = ledger

    def set(self, scope: str, state: str, *, by: str, reason: str) -> StateChange:
        """Put a strategy or account in ``state`` (``enabled`` lifts the runtime state).

        Raises:
            InvalidInput: a malformed scope or state, an empty ``by`` or
                ``reason``, or a ``system:`` identity setting a state by hand.
            UnknownScope: the scope is not in the live policy (and, to enable,
                carries no state either).
            ReenableRefused: an enable the rules forbid.
        """
        scope = node_scope(scope, STATE_KINDS, "must be strategy:ID or account:ID")
        if state not in STATES:
            raise InvalidInput("state", "must be one of " + ", ".join(STATES))
        by, reason = text("by", by), text("reason", reason)
        if state != "enabled" and by.startswith(SYSTEM_PREFIX):
            raise InvalidInput(
                "by", f"{SYSTEM_PREFIX} identities are reserved for automatic triggers"
            )
        lg = self._lg
        firm = self._firm(scope, state)
        k = lg.keys
        raw = lg._call(
            lg.scripts.set_state,
            [k.policy(firm), k.controls(firm), k.audit(firm)],
            [_OPS[state], scope, by, reason, lg.audit_maxlen],
        )
        code = _s(raw[0])
        if code == Reason.UNKNOWN_NODE.value:
            raise UnknownScope(f"{scope}: no such strategy or account in firm {firm}'s policy")
        if code == Reason.REENABLE_REFUSED.value:
            # The script refused and audited it (a system: identity, or the trigger itself).
            check_reenabler(by)
            raise ReenableRefused(
                f"{scope} was set automatically by {by!r}; someone else must re-enable it"
            )
        return StateChange(scope, state, _s(raw[1]), bool(raw[2]), self._policy_state(scope))

    def enable(self, scope: str, *, by: str, reason: str) -> StateChange:
        """Lift the runtime state of a strategy or account; see :meth:`set`."""
        return self.set(scope, "enabled", by=by, reason=reason)

    def list(self) -> list[ScopeState]:
        """Every runtime state of every firm, and every policy ``state`` other than enabled."""
        lg = self._lg
        firms = lg._known_firms()
        with lg._redis_errors():
            pipe = lg.redis.pipeline(transaction=False)
            for f in firms:
                pipe.hgetall(lg.keys.controls(f))
            controls = pipe.execute()
        policy = lg.policy(refresh=True)
        from_policy = {
            node.scope: (node.firm, getattr(node, "state", "enabled"))
            for node in (policy.nodes.values() if policy else ())
            if node.kind in STATE_KINDS
        }
        out: dict[str, ScopeState] = {}
        for firm, entries in zip(firms, controls, strict=True):
            for name, blob in entries.items():
                field = _s(name)
                if not field.startswith("s|"):
                    continue
                scope = field[2:]
                rec = msgpack.unpackb(blob, raw=False)
                out[scope] = ScopeState(
                    scope,
                    firm,
                    rec.get("st"),
                    "runtime",
                    from_policy.get(scope, (firm, "enabled"))[1],
                    rec.get("by"),
                    rec.get("why"),
                    rec.get("t"),
                    rec.get("auto") == 1,
                    rec.get("cause"),
                )
        for scope, (firm, state) in from_policy.items():
            if state != "enabled" and scope not in out:
                out[scope] = ScopeState(scope, firm, state, "policy", state)
        return sorted(out.values(), key=lambda s: (s.firm, s.scope))

    def _firm(self, scope: str, state: str) -> str:
        lg = self._lg
        try:
            return lg._firm_of_scope(scope)
        except UnknownScope:
            # A node dropped from the policy may still carry a state to lift.
            if state == "enabled":
                firms = lg._known_firms()
                with lg._redis_errors():
                    pipe = lg.redis.pipeline(transaction=False)
                    for f in firms:
                        pipe.hexists(lg.keys.controls(f), f"s|{scope}")
                    hits = pipe.execute()
                for f, hit in zip(firms, hits, strict=True):
                    if hit:
                        return f
            raise

    def _policy_state(self, scope: str) -> str:
        policy = self._lg.policy(refresh=True)
        node = policy.node(scope) if policy else None
        return getattr(node, "state", "enabled") if node else "enabled"
