"""What a desk-head token may see: its desks' nodes, and the switches that stop them.

Aggregates are kept per node, not per (desk, node): the totals of a strategy
or trader whose accounts lie on several desks mix those desks' exposure, and
no share of them can be shown to one desk alone. So a desk head sees

* **nodes** (utilization, heatmap): its desks, the accounts on them, and the
  strategies and traders *all* of whose accounts lie on its desks; never the
  firm, nor a strategy or trader that also trades another desk;
* **kill switches and states** that stop orders on its desks: the global
  switch, its firm's, its desks', its accounts', and those of strategies and
  traders with at least one account on its desks. Who set one and why are
  shown only when the switch sits on a node it sees in full (above); for the
  others (global, firm, a spanning strategy or trader) it sees that the
  switch is active and since when, not the other desks' texts;
* **reference prices** of its desks' firms;
* **audit records** (the dashboard's rejects) tagged with one of its desks
  (lua/includes/path.lua ``about``); a basket record counts when one of its
  legs is on its desks. Records without a desk (an unknown order id) are
  never shown to it.

Other roles see everything; :func:`view` returns None for them. The metrics
carry no node ids (``op``, ``result``, ``reason``, ``kind`` only), so nothing
there needs scoping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from ledger.facade.prices import ReferencePrice
from ledger.facade.results import Kill, UtilizationRow
from ledger.facade.states import ScopeState
from ledger.policy.model import Node, Policy
from ledger.store.tokens import Principal, Role

__all__ = ["DeskView", "view"]

_T = TypeVar("_T", Kill, ScopeState)


@dataclass(frozen=True)
class DeskView:
    """The part of the ledger a desk head sees (see the module docstring)."""

    policy: Policy | None
    desks: frozenset[str]

    def _desk_of(self, account: str) -> str | None:
        node = self.policy.node(f"account:{account}") if self.policy else None
        return node.parent.partition(":")[2] if node and node.parent else None

    def _node(self, scope: str) -> Node | None:
        return self.policy.node(scope) if self.policy else None

    @property
    def firms(self) -> frozenset[str]:
        """The firms of the token's desks that the policy has."""
        return frozenset(n.firm for d in self.desks if (n := self._node(f"desk:{d}")) is not None)

    def sees(self, scope: str) -> bool:
        """The node lies wholly on the token's desks: its figures and texts may be shown."""
        node = self._node(scope)
        if node is None:
            return False
        if node.kind == "desk":
            return node.id in self.desks
        if node.kind == "account":
            return self._desk_of(node.id) in self.desks
        if node.kind in ("strategy", "trader"):
            desks = {self._desk_of(a) for a in node.accounts}
            return bool(desks) and desks <= self.desks
        return False

    def stops(self, scope: str) -> bool:
        """A switch on ``scope`` stops orders on the token's desks."""
        if scope == "global":
            return bool(self.firms)
        node = self._node(scope)
        if node is None:
            return False
        if node.kind == "firm":
            return node.id in self.firms
        if node.kind in ("strategy", "trader"):
            return any(self._desk_of(a) in self.desks for a in node.accounts)
        return self.sees(scope)

    def switches(self, items: Iterable[_T]) -> list[_T]:
        """Kills or states that stop the desks; others' who/why texts withheld."""
        out = []
        for item in items:
            if not self.stops(item.scope):
                continue
            out.append(item if self.sees(item.scope) else _withheld(item))
        return out

    def rows(self, rows: Iterable[UtilizationRow]) -> list[UtilizationRow]:
        return [r for r in rows if self.sees(r.scope)]

    def prices(self, rows: Iterable[ReferencePrice]) -> list[ReferencePrice]:
        firms = self.firms
        return [r for r in rows if r.firm in firms]

    def record(self, record: dict[str, Any]) -> bool:
        """An audit record concerns one of the token's desks (in the desk's own firm)."""
        desks = record.get("desks") or [record.get("desk")]
        for desk in desks:
            node = self._node(f"desk:{desk}") if isinstance(desk, str) else None
            if node is not None and node.id in self.desks and record.get("firm") == node.firm:
                return True
        return False


def _withheld(item: _T) -> _T:
    """The switch without who set it and why."""
    texts: dict[str, Any] = {"by": None, "reason": None}
    if isinstance(item, ScopeState):
        texts["cause"] = None
    return dataclasses.replace(item, **texts)


def view(principal: Principal, policy: Policy | None) -> DeskView | None:
    """The desk head's view, or None for roles that see every desk."""
    if principal.role is not Role.DESK_HEAD:
        return None
    return DeskView(policy, principal.desks)
