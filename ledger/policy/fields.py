"""What a section's parser needs from the policy parser: typed fields, problems by field.

The parser in :mod:`ledger.policy.model` provides this; the sections parsed in other modules
(:mod:`ledger.policy.controls`) take it by this interface, so they need not import the model.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Fields"]


class Fields(Protocol):
    """Reads one policy document, collecting every problem with the field it is in."""

    def fail(self, where: str, message: str) -> None:
        """Record a problem at ``where`` (a dotted field path; empty for the document)."""

    def mapping(self, value: object, where: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        """The mapping with its unknown keys reported, or None (reported) if it is not one."""

    def sequence(self, value: object, where: str) -> list[Any]:
        """The list, or an empty one (reported unless the value was absent)."""

    def count(self, value: object, where: str, minimum: int = 0) -> int | None:
        """A whole number from ``minimum`` up, or None (reported)."""

    def ident(self, value: object, where: str) -> str | None:
        """An identifier, or None (reported)."""

    def money(self, value: object, where: str) -> int | None:
        """An amount in minor units, or None (reported)."""
