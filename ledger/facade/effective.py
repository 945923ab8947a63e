"""The limit in force at a node, for the views (utilization, check) and the metrics.

Reserve decides against the *effective* limit (lua/includes/controls.lua,
``effective_limits``): an approved override while server time is before its
expiry, else the policy's value; a money limit is then scaled by the smallest
stress factor set at the node or above it on the order's path, rounding
down. This module applies the same rule to the same fields of the firm's
controls hash (``o|S`` overrides in force, ``x|S`` stress factors;
docs/controls-layout.md), so that what people read is what orders meet.
tests/test_effective.py checks it against reserve's own decisions.

A strategy's or trader's path is not fixed (it runs through each of its
accounts), so its factor here is the smallest one set on the nodes that are
on *every* path through it: its firm, itself, and a desk, account or
strategy it always goes through. An order through a more stressed desk meets
a smaller limit still.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack

from ledger._types import RedisClient
from ledger.policy.model import MONEY_LIMITS, Node, Policy
from ledger.policy.money import format_minor
from ledger.store.keys import Keys

#: A stress factor is kept as whole millionths: 0.5 is 500000 (ledger/facade/stress.py).
FACTOR_SCALE: Final = 1_000_000


def format_factor(millionths: int) -> str:
    """Millionths back to the shortest decimal: 500000 -> ``"0.5"``."""
    return format_minor(millionths, 6).rstrip("0").rstrip(".")


__all__ = [
    "FACTOR_SCALE",
    "format_factor",
    "STRESSED",
    "Limit",
    "Controls",
    "read_controls",
    "controls_of",
    "scaled",
]

#: Limits a stress factor scales: STRESSED in lua/includes/controls.lua.
STRESSED: Final = frozenset(MONEY_LIMITS)


def scaled(value: int, factor: int) -> int:
    """``floor(value * factor / 10^6)``, as ``scaled`` in lua/includes/controls.lua."""
    return value * factor // FACTOR_SCALE


@dataclass(frozen=True)
class Limit:
    """One limit of one node: the value in force and where it comes from."""

    value: int
    policy: int
    #: The override in force (``OV-7``), if any.
    override: str | None = None
    #: The stress factor applied, in millionths; None when none is.
    factor: int | None = None


@dataclass(frozen=True)
class Controls:
    """A firm's overrides in force and stress factors, as of server time ``now_ms``."""

    now_ms: int
    #: scope -> limit name -> (value, expiry ms, override id)
    overrides: dict[str, dict[str, tuple[int, int, str]]] = field(default_factory=dict)
    #: scope -> factor in millionths
    factors: dict[str, int] = field(default_factory=dict)

    def factor(self, policy: Policy, node: Node) -> int:
        """The smallest stress factor on every path through ``node``."""
        scopes = [f"firm:{node.firm}", node.scope]
        if node.kind == "account" and node.parent:
            scopes.append(node.parent)
        elif node.kind in ("strategy", "trader"):
            accounts = sorted(node.accounts)
            desks = {policy.nodes[f"account:{a}"].parent for a in accounts}
            if len(accounts) == 1:
                scopes.append(f"account:{accounts[0]}")
            if len(desks) == 1 and None not in desks:
                scopes.append(str(next(iter(desks))))
            if node.kind == "trader" and len(node.strategies) == 1:
                scopes.append(f"strategy:{next(iter(node.strategies))}")
        return min([FACTOR_SCALE, *(self.factors.get(s, FACTOR_SCALE) for s in scopes)])

    def limit(self, policy: Policy, node: Node, name: str, value: int) -> Limit:
        """The limit ``name`` of ``node`` in force, whose policy value is ``value``."""
        found, override = value, None
        entry = self.overrides.get(node.scope, {}).get(name)
        if entry is not None and self.now_ms < entry[1]:
            found, override = entry[0], entry[2]
        factor = self.factor(policy, node) if name in STRESSED else FACTOR_SCALE
        if factor < FACTOR_SCALE:
            return Limit(scaled(found, factor), value, override, factor)
        return Limit(found, value, override)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_controls(client: RedisClient, keys: Keys, firm: str, now_ms: int) -> Controls:
    """The firm's ``o|S`` and ``x|S`` fields (one HGETALL of its controls hash)."""
    return controls_of(client.hgetall(keys.controls(firm)), now_ms)


def controls_of(fields: Mapping[Any, Any], now_ms: int) -> Controls:
    """The ``o|S`` and ``x|S`` fields of a controls hash already read (HGETALL's answer)."""
    controls = Controls(now_ms)
    for raw, blob in fields.items():
        name = _text(raw)
        if name.startswith("x|"):
            controls.factors[name[2:]] = int(msgpack.unpackb(blob, raw=False)["f"])
        elif name.startswith("o|"):
            controls.overrides[name[2:]] = {
                limit: (int(e["v"]), int(e["u"]), str(e.get("id", "")))
                for limit, e in msgpack.unpackb(blob, raw=False).items()
            }
    return controls
