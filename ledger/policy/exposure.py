"""What a policy leaves at risk: the tightest ceiling on every node and every trading path.

Pure Python, no Redis: it reads a validated :class:`~ledger.policy.model.Policy` and
answers the question a risk officer asks before a policy ships — "what is the
most notional this can build, and where can it build without limit?".

A *path* is one way an order can be sent: a trader, a strategy the trader may
trade, and an account both are entitled to (with the account's desk and
firm). Every order of that path is checked against every node on it, so the
path's ceiling for a kind of limit is the smallest *enforced* limit of that
kind on its five nodes. Shadow limits are recorded but never refuse an order:
they are no ceiling, and a path whose only ceiling is a shadow limit is
unguarded.

A *node's* ceiling also counts what bounds it from elsewhere: a desk cannot
hold more than its firm allows, an account more than its desk, and a strategy
or trader no more than the accounts it trades can hold between them. Net is
never more than gross, so a gross ceiling also bounds net.

The message windows bound how fast orders reach the market: at most ``L``
new orders in any window ``w`` means at most ``L × ceil(W / w)`` in a time
``W``; times the per-order notional cap, that is the most notional a path
can send in ``W``. Either missing means no bound.

Runtime changes (overrides, stress factors) are not in the file and not
counted here; ``ledger utilization`` shows the limits in force.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from ledger.policy.model import Node, Policy
from ledger.policy.money import format_minor

__all__ = ["Ceiling", "NodeExposure", "PathExposure", "Report", "analyse"]

#: Window lengths of the message limits, by policy key.
#: Message types that bound new orders (``all`` counts every type).
_NEW_TYPES: Final = ("all", "new")

UNGUARDED: Final = "unguarded"
NO_ORDER_CAP: Final = "no_order_notional_cap"
NO_MESSAGE_LIMIT: Final = "no_message_limit"
SHADOW_ONLY: Final = "shadow_only"
#: What each flag means, for people.
FLAG_TEXT: Final = {
    UNGUARDED: "no enforced gross or net ceiling: the path can build any position",
    NO_ORDER_CAP: "no per-order notional cap (node or tier) on the path",
    NO_MESSAGE_LIMIT: "no message limit for new orders on the path",
    SHADOW_ONLY: "a gross or net limit on the path is shadow only (recorded, never enforced)",
}


@dataclass(frozen=True)
class Ceiling:
    """The smallest bound that applies, in minor units, and the scope it comes from."""

    minor: int | None = None
    source: str | None = None

    @property
    def bounded(self) -> bool:
        return self.minor is not None

    def tighter(self, other: Ceiling) -> Ceiling:
        if other.minor is None:
            return self
        if self.minor is None or other.minor < self.minor:
            return other
        return self


@dataclass(frozen=True)
class NodeExposure:
    scope: str
    gross: Ceiling
    net: Ceiling


@dataclass(frozen=True)
class PathExposure:
    trader: str
    strategy: str
    account: str
    desk: str
    firm: str
    gross: Ceiling
    net: Ceiling
    order_notional: Ceiling
    #: Most new orders the message limits let through in the report's window.
    messages: Ceiling
    #: messages x order notional: the most notional sent in the window.
    notional_in_window: int | None
    flags: tuple[str, ...] = ()

    @property
    def unguarded(self) -> bool:
        return UNGUARDED in self.flags


@dataclass(frozen=True)
class Report:
    currency: str
    minor_units: int
    window_ms: int
    nodes: tuple[NodeExposure, ...]
    paths: tuple[PathExposure, ...]
    #: Scopes of accounts that no trader can reach, strategies and traders with no path.
    unreachable: tuple[str, ...] = field(default=())

    @property
    def unguarded(self) -> list[PathExposure]:
        return [p for p in self.paths if p.unguarded]

    def money(self, minor: int | None) -> str | None:
        return None if minor is None else format_minor(minor, self.minor_units)

    def to_dict(self) -> dict[str, Any]:
        def ceiling(c: Ceiling, money: bool = True) -> dict[str, Any]:
            value = self.money(c.minor) if money else c.minor
            return {"ceiling": value, "source": c.source}

        return {
            "currency": self.currency,
            "window_ms": self.window_ms,
            "summary": {
                "paths": len(self.paths),
                "unguarded": len(self.unguarded),
                "flags": {f: sum(f in p.flags for p in self.paths) for f in FLAG_TEXT},
                "unreachable": list(self.unreachable),
            },
            "nodes": [
                {"scope": n.scope, "gross": ceiling(n.gross), "net": ceiling(n.net)}
                for n in self.nodes
            ],
            "paths": [
                {
                    "trader": p.trader,
                    "strategy": p.strategy,
                    "account": p.account,
                    "desk": p.desk,
                    "firm": p.firm,
                    "gross": ceiling(p.gross),
                    "net": ceiling(p.net),
                    "order_notional": ceiling(p.order_notional),
                    "messages_in_window": ceiling(p.messages, money=False),
                    "notional_in_window": self.money(p.notional_in_window),
                    "flags": list(p.flags),
                }
                for p in self.paths
            ],
        }


def _own(node: Node, limit: str) -> Ceiling:
    """The node's enforced ``limit``; a shadow limit is no ceiling."""
    value = getattr(node.limits, limit)
    if value is None or limit in node.limits.shadow:
        return Ceiling()
    return Ceiling(value, f"{node.scope} {limit}")


def _total(parts: list[Ceiling], scope: str) -> Ceiling:
    """What several nodes can hold together: unbounded if any one is."""
    if any(p.minor is None for p in parts):
        return Ceiling()
    sources = {p.source for p in parts}
    source = sources.pop() if len(sources) == 1 else f"accounts of {scope}"
    return Ceiling(sum(p.minor or 0 for p in parts), source)


def _capacity(policy: Policy, limit: str, accounts: frozenset[str], scope: str) -> Ceiling:
    """The most ``accounts`` can hold between them under the tree above them.

    A firm holds at most its own limit or what its desks can hold, a desk its own
    or what its accounts can; so two accounts of one desk share that desk's
    ceiling rather than each counting it once.
    """
    wanted = {f"account:{a}" for a in accounts}
    desks = {policy.nodes[a].parent for a in wanted}
    firms = sorted({policy.nodes[a].firm for a in wanted})

    def under(node: Node) -> Ceiling:
        if node.kind == "account":
            return _own(node, limit)
        kids = [c for c in policy.children(node.scope) if c.scope in wanted or c.scope in desks]
        return _own(node, limit).tighter(_total([under(c) for c in kids], scope))

    return _total([under(policy.nodes[f"firm:{f}"]) for f in firms], scope)


def _node_ceilings(policy: Policy, limit: str) -> dict[str, Ceiling]:
    """Every node's tightest ``limit``: its own, what bounds it from above, and for
    strategies and traders what the accounts they trade can hold between them."""
    out: dict[str, Ceiling] = {}
    for kind in ("firm", "desk", "account"):
        for node in policy.nodes.values():
            if node.kind == kind:
                above = out[node.parent] if node.parent else Ceiling()
                ceiling = _own(node, limit).tighter(above)
                if kind != "account":
                    # No more than the accounts under it can hold between them.
                    accounts = frozenset(
                        n.id for n in policy.subtree(node.scope) if n.kind == "account"
                    )
                    if accounts:
                        ceiling = ceiling.tighter(_capacity(policy, limit, accounts, node.scope))
                out[node.scope] = ceiling
    for kind in ("strategy", "trader"):
        for node in policy.nodes.values():
            if node.kind == kind:
                held = _capacity(policy, limit, node.accounts, node.scope)
                ceiling = _own(node, limit).tighter(held)
                if kind == "trader" and len(node.strategies) == 1:
                    # Every order of the trader goes through its one strategy.
                    (only,) = node.strategies
                    ceiling = ceiling.tighter(out[f"strategy:{only}"])
                out[node.scope] = ceiling
    return out


def _window_count(node: Node, window_ms: int) -> Ceiling:
    """Most new orders ``node``'s message limits allow in ``window_ms``."""
    best = Ceiling()
    for kind in _NEW_TYPES:
        limits = node.limits.messages.get(kind)
        if limits is None or "messages" in node.limits.shadow:
            continue
        for _, w, per in limits.windows():
            if per is not None:
                best = best.tighter(Ceiling(per * -(-window_ms // w), node.scope))
    return best


def _paths(policy: Policy) -> Iterator[tuple[Node, Node, Node]]:
    traders = sorted((n for n in policy.nodes.values() if n.kind == "trader"), key=lambda n: n.id)
    for trader in traders:
        for strategy_id in sorted(trader.strategies):
            strategy = policy.nodes[f"strategy:{strategy_id}"]
            for account_id in sorted(trader.accounts & strategy.accounts):
                yield trader, strategy, policy.nodes[f"account:{account_id}"]


def _order_cap(policy: Policy, path: list[Node]) -> Ceiling:
    """The per-order notional cap of the path; with tiers, the loosest tier's cap counts
    too (an order in that tier meets only that cap and the nodes')."""
    cap = Ceiling()
    for node in path:
        cap = cap.tighter(_own(node, "max_order_notional"))
    tiers = policy.controls.tiers.values()
    if not tiers or cap.bounded:
        return cap
    tier_caps = [t.max_order_notional for t in tiers]
    if any(c is None for c in tier_caps):
        return cap
    loosest = max(tiers, key=lambda t: t.max_order_notional or 0)
    return Ceiling(loosest.max_order_notional, f"tier:{loosest.name}")


def analyse(policy: Policy, window_ms: int = 60_000) -> Report:
    """Ceilings of every node and every path, and the paths nothing bounds."""
    gross = _node_ceilings(policy, "max_gross_notional")
    net = _node_ceilings(policy, "max_net_notional")
    nodes = tuple(
        NodeExposure(scope, gross[scope], net[scope].tighter(gross[scope]))
        for scope in policy.nodes
    )
    paths = []
    reached: set[str] = set()
    for trader, strategy, account in _paths(policy):
        assert account.parent is not None
        desk = policy.nodes[account.parent]
        firm = policy.nodes[f"firm:{account.firm}"]
        on_path = [firm, desk, account, strategy, trader]
        reached.update(n.scope for n in on_path)
        g, n, msgs = Ceiling(), Ceiling(), Ceiling()
        shadow = False
        for node in on_path:
            g, n = (
                g.tighter(_own(node, "max_gross_notional")),
                n.tighter(_own(node, "max_net_notional")),
            )
            msgs = msgs.tighter(_window_count(node, window_ms))
            shadow |= bool({"max_gross_notional", "max_net_notional"} & node.limits.shadow)
        n = n.tighter(g)
        cap = _order_cap(policy, on_path)
        flags = []
        if not g.bounded and not n.bounded:
            flags.append(UNGUARDED)
        if not cap.bounded:
            flags.append(NO_ORDER_CAP)
        if not msgs.bounded:
            flags.append(NO_MESSAGE_LIMIT)
        if shadow:
            flags.append(SHADOW_ONLY)
        in_window = None
        if cap.minor is not None and msgs.minor is not None:
            in_window = cap.minor * msgs.minor
        paths.append(
            PathExposure(
                trader.id,
                strategy.id,
                account.id,
                desk.id,
                firm.id,
                g,
                n,
                cap,
                msgs,
                in_window,
                tuple(flags),
            )
        )
    unreachable = tuple(
        s
        for s, node in policy.nodes.items()
        if node.kind in ("account", "strategy", "trader") and s not in reached
    )
    return Report(policy.currency, policy.minor_units, window_ms, nodes, tuple(paths), unreachable)
