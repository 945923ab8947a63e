"""What the operation groups (states, prices, overrides, stress, reconcile, cancels) use of the
ledger: its connection, keys and scripts, and a few lookups, as an interface.

:class:`ledger.facade.client.Ledger` provides it and composes the groups; the groups take the
interface, so none of them imports the facade back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from ledger._types import RedisClient
from ledger.facade.results import UtilizationRow
from ledger.policy.model import Policy
from ledger.reasons import Reason
from ledger.store.durable import DurableWrites
from ledger.store.keys import Keys
from ledger.store.scripts import ScriptSet

__all__ = ["Firms", "LedgerCore", "Unlocated"]

T = TypeVar("T")

#: The firm(s) a caller acts for: one id, several, or None (every firm).
Firms = str | Iterable[str] | None


class Unlocated(Exception):
    """No single firm holds the order the caller named (UNKNOWN_ORDER or ambiguous)."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class LedgerCore(Protocol):
    """The parts of a ledger its operation groups call."""

    redis: RedisClient
    keys: Keys
    scripts: ScriptSet
    durable: DurableWrites
    #: Approximate length each audit stream is trimmed to.
    audit_maxlen: int

    def _redis_errors(self) -> AbstractContextManager[None]:
        """Raise every Redis failure inside the block as LedgerUnavailable."""
        ...

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with every Redis failure raised as LedgerUnavailable."""
        ...

    def policy(self, refresh: bool = False) -> Policy | None:
        """The cached policy (fetched on first use or when ``refresh``)."""
        ...

    def _route(self, scope: str, refresh: bool = False) -> str | None:
        """The firm (``F``, or ``F|D`` for an account) of a scope; None if it has no route."""
        ...

    def _units(self) -> int | None:
        """Minor units of the live policy."""
        ...

    def firm_of(self, scope: str) -> str | None:
        """The firm of a node; None if not in the policy."""
        ...

    def _firm_of_scope(self, scope: str) -> str:
        """The firm of a node, read afresh; UnknownScope if it is not in the policy."""
        ...

    def _caller_firms(self, firm: Firms, account: str | None) -> list[str] | None:
        """The firms the caller allows an order to be in; None when it named neither."""
        ...

    def _locate(self, order_id: str, firm: Firms, account: str | None) -> str:
        """The one firm that holds an order the caller may see; Unlocated otherwise."""
        ...

    def _known_firms(self) -> list[str]:
        """Every firm of the loaded policy."""
        ...

    def utilization(self, scope: str = "global") -> list[UtilizationRow]:
        """Usage against every limit under a scope."""
        ...
