"""Checks of the free-text and scope arguments every operation takes."""

from __future__ import annotations

from ledger.errors import InvalidInput
from ledger.policy.model import KINDS

__all__ = ["text", "node_scope"]


def text(field: str, value: object, longest: int = 500) -> str:
    """A non-blank string of at most ``longest`` characters (who, why, a ticket)."""
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        raise InvalidInput(field, f"must be a non-empty text of at most {longest} characters")
    return value


def node_scope(scope: object, kinds: tuple[str, ...] = KINDS, rule: str = "") -> str:
    """``kind:id`` with ``kind`` among ``kinds``; ``rule`` words the message if given."""
    kind, _, node_id = scope.partition(":") if isinstance(scope, str) else ("", "", "")
    if kind not in kinds or not node_id:
        raise InvalidInput("scope", rule or "must be KIND:ID with KIND one of " + ", ".join(kinds))
    return str(scope)
