"""The policy model: budgets per node of the hierarchy, parsed and validated offline.

Pure Python, no Redis. A policy is a tree firm -> desk -> account, plus
strategies and traders that are entitled to accounts (and traders to
strategies). Every rule a file can break has one exact message naming the
file and the field, e.g. ``policy.yaml: firms[0].desks[1].id: duplicate desk id 'EQ-CASH'``.

A limit omitted at a node means no such limit at that node. Anything the
model does not know (a misspelt limit, an unknown key) is refused: a check
that names an absent parameter would silently pass every order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import msgpack
import yaml

from ledger.errors import InvalidInput, PolicyError
from ledger.policy.controls import (
    SYMBOL,
    TOP_KEYS,
    CancelToNew,
    Controls,
    FillThrottle,
    cancel_to_new,
    fill_throttle,
    parse_controls,
)
from ledger.policy.durations import parse_duration_ms
from ledger.policy.money import MAX_EXACT, parse_money

__all__ = [
    "KINDS",
    "MESSAGE_TYPES",
    "MONEY_LIMITS",
    "COUNT_LIMITS",
    "LIMIT_NAMES",
    "MessageLimits",
    "Limits",
    "Node",
    "Policy",
    "load_policy_file",
    "parse_policy",
]

#: Node kinds, top of the tree first.
KINDS: Final = ("firm", "desk", "account", "strategy", "trader")
#: Message types counted by the windows; ``all`` counts every type.
MESSAGE_TYPES: Final = ("all", "new", "replace", "cancel")
MONEY_LIMITS: Final = (
    "max_order_notional",
    "max_gross_notional",
    "max_net_notional",
    "max_symbol_notional",
    "max_daily_loss",
    "max_basket_notional",
)
COUNT_LIMITS: Final = ("max_order_qty", "max_open_orders", "duplicate_window_ms")
#: Limits with settings of their own rather than one number.
STRUCTURED_LIMITS: Final = ("messages", "cancel_to_new", "fill_throttle")
#: Every limit name a policy may use; ``messages`` covers all message windows.
LIMIT_NAMES: Final = (*COUNT_LIMITS, *MONEY_LIMITS, *STRUCTURED_LIMITS)
#: Limits only some kinds of node may carry (where the quantity they bound exists).
PLACEMENT: Final = {
    "max_symbol_notional": ("account", "desk"),
    "fill_throttle": ("strategy",),
}
#: Node states a strategy or an account can be in.
STATES: Final = ("enabled", "disabled", "reduce_only")
#: Message windows by name; any other length is written as a duration key such as ``5s``.
WINDOW_NAMES: Final = {
    "per_second": 1_000,
    "per_10s": 10_000,
    "per_minute": 60_000,
    "per_hour": 3_600_000,
}
_WINDOWS: Final = tuple(WINDOW_NAMES)
#: What a messages mapping lists as allowed beside the names.
_A_DURATION: Final = "a duration such as 5s"
#: The longest message window (memory stays 13 numbers a window whatever its length).
MAX_WINDOW_MS: Final = 86_400_000
_UNIT_MS: Final = (("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1))


def window_name(ms: int) -> str:
    """``per_second`` ... for the named lengths, else the duration (``5s``, ``250ms``)."""
    for name, length in WINDOW_NAMES.items():
        if length == ms:
            return name
    unit, size = next((u, n) for u, n in _UNIT_MS if ms % n == 0)
    return f"{ms // size}{unit}"


def _duration_key(key: object) -> int | None:
    """The length of a duration key (``5s``), or None if it is not one."""
    try:
        return parse_duration_ms(key, "") if isinstance(key, str) else None
    except InvalidInput:
        return None


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class MessageLimits:
    """Caps on one message type: at most ``per_second`` in any 1 s, ``per_10s`` in any 10 s,
    and for each other window length (ms) in ``other`` its limit in any window of it."""

    per_second: int | None = None
    per_10s: int | None = None
    other: Mapping[int, int] = field(default_factory=dict)

    def windows(self) -> list[tuple[str, int, int]]:
        """``(name, length ms, limit)`` of every window set, shortest first."""
        out = [
            (n, ms, c)
            for n, ms, c in (
                ("per_second", 1_000, self.per_second),
                ("per_10s", 10_000, self.per_10s),
            )
            if c
        ]
        out += [(window_name(ms), ms, c) for ms, c in self.other.items()]
        return sorted(out, key=lambda w: w[1])


@dataclass(frozen=True)
class Limits:
    """The limits at one node. ``None`` means no such limit here; money is in minor units."""

    max_order_qty: int | None = None
    max_order_notional: int | None = None
    max_gross_notional: int | None = None
    max_net_notional: int | None = None
    max_open_orders: int | None = None
    max_symbol_notional: int | None = None
    max_daily_loss: int | None = None
    max_basket_notional: int | None = None
    duplicate_window_ms: int | None = None
    messages: Mapping[str, MessageLimits] = field(default_factory=dict)
    cancel_to_new: CancelToNew | None = None
    fill_throttle: FillThrottle | None = None
    #: Limits evaluated and recorded but not enforced (for a safe roll-out).
    shadow: frozenset[str] = frozenset()

    def items(self) -> Iterator[tuple[str, int]]:
        """``(name, value)`` for every scalar limit that is set."""
        for name in (*COUNT_LIMITS, *MONEY_LIMITS):
            value = getattr(self, name)
            if value is not None:
                yield name, value


@dataclass(frozen=True)
class Node:
    """One node of the hierarchy. ``scope`` is ``kind:id``, e.g. ``desk:EQ-CASH``."""

    kind: str
    id: str
    firm: str
    limits: Limits
    #: Scope of the parent for desks and accounts; None for the others.
    parent: str | None = None
    #: For strategies and traders: the accounts they are entitled to.
    accounts: frozenset[str] = frozenset()
    #: For traders: the strategies they may trade.
    strategies: frozenset[str] = frozenset()
    #: For strategies and accounts: enabled, disabled or reduce_only.
    state: str = "enabled"
    #: For accounts: the symbols and venues it may trade; None means not restricted.
    symbols: frozenset[str] | None = None
    venues: frozenset[str] | None = None
    #: Firms and accounts set aside for drills (``ledger drill``); an account of a
    #: drill firm is one too.
    drill: bool = False

    @property
    def scope(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Policy:
    """A validated policy. ``nodes`` maps scope -> :class:`Node`."""

    currency: str
    minor_units: int
    nodes: Mapping[str, Node]
    #: sha256 of the canonical document; names the policy in the audit stream.
    sha256: str
    document: Mapping[str, Any]
    controls: Controls = Controls()

    @property
    def firms(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.kind == "firm"]

    def node(self, scope: str) -> Node | None:
        return self.nodes.get(scope)

    def children(self, scope: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.parent == scope]

    def subtree(self, scope: str) -> list[Node]:
        """The node, its descendants, and the strategies and traders entitled under it."""
        if scope == "global":
            return list(self.nodes.values())
        root = self.nodes[scope]
        if root.kind in ("strategy", "trader"):
            return [root]
        out, todo = [], [root]
        while todo:
            node = todo.pop(0)
            out.append(node)
            todo.extend(self.children(node.scope))
        accounts = {n.id for n in out if n.kind == "account"}
        out.extend(
            n
            for n in self.nodes.values()
            if n.kind in ("strategy", "trader") and n.accounts & accounts
        )
        return out

    def path(self, account: str) -> tuple[str, str] | None:
        """``(desk_id, firm_id)`` of an account, or None if the account is unknown."""
        node = self.nodes.get(f"account:{account}")
        if node is None or node.parent is None:
            return None
        desk = self.nodes[node.parent]
        return desk.id, node.firm

    def pack(self) -> bytes:
        packed: bytes = msgpack.packb(self.document, use_bin_type=True)
        return packed

    @classmethod
    def unpack(cls, blob: bytes) -> Policy:
        return parse_policy(msgpack.unpackb(blob, raw=False), source="<redis>")


def load_policy_file(path: str | Path) -> Policy:
    """Read and validate a YAML policy file; raises :class:`PolicyError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError([f"{path}: cannot read: not UTF-8 text (byte {exc.start})"]) from exc
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([f"{path}: not valid YAML{where}: {problem}"]) from exc
    return parse_policy(document, source=str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    Plain YAML loaders keep the last of two equal keys, so a second ``limits:``
    block would silently drop the first one's limits.
    """


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *base" keys may be overridden, as YAML intends
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            continue  # unhashable: the standard constructor reports it
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {_short(key)}",
                key_node.start_mark,
            )
        seen.add(key)
    # A generator, as PyYAML's own: the empty mapping first, so aliases may refer to it.
    data: dict[Any, Any] = {}
    yield data
    data.update(loader.construct_mapping(node))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def parse_policy(document: object, source: str = "<policy>") -> Policy:
    """Validate a policy document (the parsed YAML); raises :class:`PolicyError`."""
    return _Parser(source).parse(document)


class _Parser:
    """Collects every problem instead of stopping at the first, so one run fixes a file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.nodes: dict[str, Node] = {}
        #: Scopes defined with an id but left out because of a problem reported there.
        self.unplaced: set[str] = set()
        self.minor_units = 2
        self.controls = Controls()

    def fail(self, where: str, message: str) -> None:
        # ``where`` is empty for the document itself.
        prefix = f"{self.source}: {where}" if where else self.source
        self.problems.append(f"{prefix}: {message}")

    def mapping(self, value: object, where: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        """The mapping with its unknown keys reported, or None (reported) if it is not one."""
        if not isinstance(value, dict):
            what = "must be a mapping" if where else "the policy must be a mapping"
            self.fail(where, f"{what}, got {_describe(value)}")
            return None
        for key in value:
            if key not in allowed:
                here = f"{where}.{key}" if where else str(key)
                self.fail(here, f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def sequence(self, value: object, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(where, f"must be a list, got {_describe(value)}")
            return []
        return value

    def count(self, value: object, where: str, minimum: int = 0) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be a whole number, got {_describe(value)}")
            return None
        if value < minimum or value > MAX_EXACT:
            self.fail(where, f"must be between {minimum} and {MAX_EXACT}, got {value}")
            return None
        return value

    def ident(self, value: object, where: str) -> str | None:
        if value is None:
            self.fail(where, "is required")
            return None
        if not isinstance(value, str) or not _ID.fullmatch(value):
            self.fail(
                where,
                "must be 1-64 characters of letters, digits, '.', '_' or '-', "
                f"starting with a letter or digit, got {_describe(value)}",
            )
            return None
        return value

    def parse(self, document: object) -> Policy:
        top = self.mapping(
            document,
            "",
            ("version", "currency", "minor_units", "firms", "strategies", "traders", *TOP_KEYS),
        )
        if top is None:
            raise PolicyError(self.problems)
        version = top.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version != 1:
            self.fail("version", f"must be 1, got {_describe(version)}")
        currency = top.get("currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            what = "must be a three-letter ISO code such as USD"
            self.fail("currency", f"{what}, got {_describe(currency)}")
        minor = top.get("minor_units", 2)
        if isinstance(minor, bool) or not isinstance(minor, int) or not 0 <= minor <= 8:
            self.fail("minor_units", f"must be a whole number from 0 to 8, got {_describe(minor)}")
        else:
            self.minor_units = minor

        self.controls = parse_controls(self, top)
        raw_firms = top.get("firms")
        firms = self.sequence(raw_firms, "firms")
        if raw_firms is None or raw_firms == []:
            self.fail("firms", "at least one firm is required")
        for i, firm in enumerate(firms):
            self.firm(firm, f"firms[{i}]")
        for i, strategy in enumerate(self.sequence(top.get("strategies"), "strategies")):
            self.entitled("strategy", strategy, f"strategies[{i}]")
        for i, trader in enumerate(self.sequence(top.get("traders"), "traders")):
            self.entitled("trader", trader, f"traders[{i}]")

        if self.problems:
            raise PolicyError(self.problems)
        plain = self.plain(top, "")
        if self.problems:
            raise PolicyError(self.problems)
        canonical = msgpack.packb(_canonical(plain), use_bin_type=True)
        return Policy(
            currency=str(currency),
            minor_units=self.minor_units,
            nodes=dict(self.nodes),
            sha256=hashlib.sha256(canonical).hexdigest(),
            document=plain,
            controls=self.controls,
        )

    def plain(self, value: Any, where: str) -> Any:
        """The document as it is stored and hashed: a ``Decimal`` becomes its exact decimal
        text (so ``Decimal("100.5")`` and ``"100.5"`` are one policy); a value of a type
        a document cannot hold is reported where it is."""
        if isinstance(value, dict):
            return {k: self.plain(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, Decimal) and value.is_finite():
            return format(value, "f")
        if value is None or isinstance(value, str | int | float):
            return value
        self.fail(where, f"must be a string, number, list or mapping, got {_describe(value)}")
        return None

    def add(self, node: Node, where: str) -> None:
        if node.scope in self.nodes:
            self.fail(f"{where}.id", f"duplicate {node.kind} id {node.id!r}")
        else:
            self.nodes[node.scope] = node

    def firm(self, value: object, where: str) -> None:
        spec = self.mapping(value, where, ("id", "limits", "desks", "drill"))
        if spec is None:
            return
        firm_id = self.ident(spec.get("id"), f"{where}.id")
        limits = self.limits(spec.get("limits"), f"{where}.limits", "firm")
        drill = self.drill(spec, where)
        if firm_id is not None:
            self.add(Node("firm", firm_id, firm_id, limits, drill=drill), where)
        # Below a bad id the nodes are still checked (one run reports every
        # problem) but not added.
        for j, desk in enumerate(self.sequence(spec.get("desks"), f"{where}.desks")):
            self.desk(desk, f"{where}.desks[{j}]", firm_id, drill)

    def drill(self, spec: Mapping[str, Any], where: str, firm_drill: bool = False) -> bool:
        value = spec.get("drill", firm_drill)
        if not isinstance(value, bool):
            self.fail(f"{where}.drill", f"must be true or false, got {_describe(value)}")
            return firm_drill
        if firm_drill and not value:
            # Drill orders count against the firm: a real account there would share them.
            self.fail(f"{where}.drill", "every account of a drill firm is a drill account")
            return True
        return value

    def desk(
        self, value: object, where: str, firm_id: str | None, firm_drill: bool = False
    ) -> None:
        spec = self.mapping(value, where, ("id", "limits", "accounts"))
        if spec is None:
            return
        desk_id = self.ident(spec.get("id"), f"{where}.id")
        limits = self.limits(spec.get("limits"), f"{where}.limits", "desk")
        if firm_id is not None and desk_id is not None:
            self.add(Node("desk", desk_id, firm_id, limits, parent=f"firm:{firm_id}"), where)
        for k, account in enumerate(self.sequence(spec.get("accounts"), f"{where}.accounts")):
            here = f"{where}.accounts[{k}]"
            aspec = self.mapping(
                account, here, ("id", "limits", "state", "symbols", "venues", "drill")
            )
            if aspec is None:
                continue
            account_id = self.ident(aspec.get("id"), f"{here}.id")
            alimits = self.limits(aspec.get("limits"), f"{here}.limits", "account")
            state = self.state(aspec, here)
            symbols = self.entitled_symbols(aspec, here)
            venues = self.venues(aspec, here)
            drill = self.drill(aspec, here, firm_drill)
            if account_id is None:
                continue
            if firm_id is None or desk_id is None:
                self.unplaced.add(f"account:{account_id}")
            else:
                node = Node(
                    "account",
                    account_id,
                    firm_id,
                    alimits,
                    parent=f"desk:{desk_id}",
                    state=state,
                    symbols=symbols,
                    venues=venues,
                    drill=drill,
                )
                self.add(node, here)

    def entitled(self, kind: str, value: object, where: str) -> None:
        allowed = ("id", "limits", "accounts") + (
            ("strategies",) if kind == "trader" else ("state",)
        )
        spec = self.mapping(value, where, allowed)
        if spec is None:
            return
        node_id = self.ident(spec.get("id"), f"{where}.id")
        limits = self.limits(spec.get("limits"), f"{where}.limits", kind)
        state = self.state(spec, where) if kind == "strategy" else "enabled"
        accounts, complete = self.references("account", spec.get("accounts"), f"{where}.accounts")
        strategies: list[tuple[int, str]] = []
        if kind == "trader":
            strategies, found_all = self.references(
                "strategy", spec.get("strategies"), f"{where}.strategies"
            )
            complete = complete and found_all
        # Aggregates of one node live in one firm's slot; a node spanning
        # firms would split its budget silently.
        firms = sorted({self.nodes[f"account:{a}"].firm for _, a in accounts})
        if len(firms) > 1:
            self.fail(f"{where}.accounts", f"all accounts must belong to one firm, got {firms}")
            complete = False
        for i, strategy in strategies if len(firms) == 1 else ():
            other = self.nodes[f"strategy:{strategy}"].firm
            if other != firms[0]:
                complete = False
                self.fail(
                    f"{where}.strategies[{i}]",
                    f"strategy {strategy!r} belongs to firm {other!r}, "
                    f"not to firm {firms[0]!r} of the {kind}'s accounts",
                )
        if node_id is None:
            return
        if not complete or len(firms) != 1:
            self.unplaced.add(f"{kind}:{node_id}")
            return
        node = Node(
            kind,
            node_id,
            firms[0],
            limits,
            accounts=frozenset(a for _, a in accounts),
            strategies=frozenset(s for _, s in strategies),
            state=state,
        )
        self.add(node, where)

    def references(
        self, kind: str, value: object, where: str
    ) -> tuple[list[tuple[int, str]], bool]:
        """``(index, id)`` of every listed node of ``kind`` that exists, and whether all do.

        Unknown ids are reported; ids whose own definition failed were reported
        there and are passed over here, so one mistake gives one message.
        """
        if value is None or value == []:
            self.fail(where, f"at least one {kind} is required")
            return [], False
        found = []
        items = self.sequence(value, where)
        for i, item in enumerate(items):
            scope = f"{kind}:{item}"
            if isinstance(item, str) and scope in self.nodes:
                found.append((i, item))
            elif not isinstance(item, str) or scope not in self.unplaced:
                self.fail(f"{where}[{i}]", f"unknown {kind} {_short(item)}")
        return found, bool(items) and len(found) == len(items)

    def state(self, spec: Mapping[str, Any], where: str) -> str:
        value = spec.get("state", "enabled")
        if value not in STATES:
            self.fail(
                f"{where}.state", f"must be one of {', '.join(STATES)}, got {_describe(value)}"
            )
            return "enabled"
        return str(value)

    def entitled_symbols(self, spec: Mapping[str, Any], where: str) -> frozenset[str] | None:
        """The account's symbols with ``group:NAME`` entries expanded; None if not restricted."""
        if "symbols" not in spec:
            return None
        items = self.sequence(spec["symbols"], f"{where}.symbols")
        if not items:
            # An empty list would refuse every order; omitting the key allows every symbol.
            self.fail(f"{where}.symbols", "must list at least one symbol or group:NAME")
        out: set[str] = set()
        groups = self.controls.symbol_groups
        for i, item in enumerate(items):
            here = f"{where}.symbols[{i}]"
            if isinstance(item, str) and item.startswith("group:"):
                if item[6:] in groups:
                    out |= groups[item[6:]]
                else:
                    self.fail(here, f"unknown symbol group {item[6:]!r}")
            elif isinstance(item, str) and SYMBOL.fullmatch(item):
                out.add(item)
            else:
                self.fail(here, f"must be a symbol or group:NAME, got {_describe(item)}")
        return frozenset(out)

    def venues(self, spec: Mapping[str, Any], where: str) -> frozenset[str] | None:
        if "venues" not in spec:
            return None
        items = self.sequence(spec["venues"], f"{where}.venues")
        if not items:
            self.fail(f"{where}.venues", "must list at least one venue")
        for i, item in enumerate(items):
            self.ident(item, f"{where}.venues[{i}]")
        return frozenset(v for v in items if isinstance(v, str))

    def limits(self, value: object, where: str, kind: str) -> Limits:
        if value is None:
            return Limits()
        spec = self.mapping(value, where, (*LIMIT_NAMES, "shadow"))
        if spec is None:
            return Limits()
        for name, kinds in PLACEMENT.items():
            if name in spec and kind not in kinds:
                which = " or ".join(("an " if k[0] in "aeiou" else "a ") + k for k in kinds)
                self.fail(f"{where}.{name}", f"only {which} can have this limit")
        values: dict[str, Any] = {}
        for name in COUNT_LIMITS:
            if name in spec:
                # A zero-length duplicate window would guard nothing.
                least = 1 if name == "duplicate_window_ms" else 0
                values[name] = self.count(spec[name], f"{where}.{name}", least)
        for name in MONEY_LIMITS:
            if name in spec:
                values[name] = self.money(spec[name], f"{where}.{name}")
        if "messages" in spec:
            values["messages"] = self.messages(spec["messages"], f"{where}.messages")
        if "cancel_to_new" in spec:
            values["cancel_to_new"] = cancel_to_new(
                self, spec["cancel_to_new"], f"{where}.cancel_to_new"
            )
        if "fill_throttle" in spec:
            values["fill_throttle"] = fill_throttle(
                self, spec["fill_throttle"], f"{where}.fill_throttle"
            )
        values["shadow"] = self.shadow(spec.get("shadow", False), f"{where}.shadow", spec)
        return Limits(**values)

    def money(self, value: object, where: str) -> int | None:
        try:
            return parse_money(value, self.minor_units, where)
        except InvalidInput as exc:
            hint = " (write amounts as quoted decimal strings)" if isinstance(value, float) else ""
            self.fail(where, exc.message + hint)
            return None

    def _window_mapping(
        self, value: object, where: str, allowed: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """A messages mapping: named windows, duration keys (``5s``) and ``allowed``."""
        if not isinstance(value, dict):
            return self.mapping(value, where, allowed)
        named = {k: v for k, v in value.items() if k in allowed or _duration_key(k) is None}
        self.mapping(named, where, (*allowed[:4], _A_DURATION, *allowed[4:]))
        return value

    def _windows_of(self, sub: dict[str, Any], here: str) -> MessageLimits | None:
        """The windows a mapping sets (``per_second``, ``5s``, ...), each checked."""
        named: dict[str, int | None] = {}
        other: dict[int, int] = {}
        seen: dict[int, str] = {}
        for key, raw in sub.items():
            ms = WINDOW_NAMES.get(key) if key in WINDOW_NAMES else _duration_key(key)
            if ms is None:
                continue
            where = f"{here}.{key}"
            if ms % 10 or ms > MAX_WINDOW_MS:
                self.fail(
                    where,
                    "a window must be a whole number of 10 ms (its ten buckets are whole ms) "
                    "and at most 1d",
                )
                continue
            if ms in seen:
                self.fail(where, f"is the same window as {seen[ms]}")
                continue
            seen[ms] = key
            limit = self.count(raw, where, 1)
            if limit is None:
                continue
            if ms == 1_000:
                named["per_second"] = limit
            elif ms == 10_000:
                named["per_10s"] = limit
            else:
                other[ms] = limit
        if not seen:
            return None
        return MessageLimits(named.get("per_second"), named.get("per_10s"), other)

    def messages(self, value: object, where: str) -> dict[str, MessageLimits]:
        types = MESSAGE_TYPES[1:]
        spec = self._window_mapping(value, where, (*_WINDOWS, *types))
        if spec is None:
            return {}
        if not spec:
            # An empty block is a cap the author meant to write, not "no cap".
            self.fail(
                where,
                f"must set a window (per_second, per_10s, per_minute, per_hour, {_A_DURATION}) "
                f"or a message type ({', '.join(types)})",
            )
            return {}
        out: dict[str, MessageLimits] = {}
        for kind in MESSAGE_TYPES:
            sub, here = spec, where
            if kind != "all":
                if kind not in spec:
                    continue
                here = f"{where}.{kind}"
                typed = self._window_mapping(spec[kind], here, _WINDOWS)
                if typed is None:
                    continue
                if not any(k in WINDOW_NAMES or _duration_key(k) is not None for k in typed):
                    self.fail(
                        here,
                        f"must set a window (per_second, per_10s, per_minute, per_hour, "
                        f"{_A_DURATION})",
                    )
                    continue
                sub = typed
            limits = self._windows_of(sub, here)
            if limits is not None:
                out[kind] = limits
        return out

    def shadow(self, value: object, where: str, spec: Mapping[str, Any]) -> frozenset[str]:
        if value is True:
            names = frozenset(name for name in LIMIT_NAMES if name in spec)
            if not names:
                self.fail(where, "is true but no limit is set at this node")
            return names
        if value is False or value is None:
            return frozenset()
        if not isinstance(value, list):
            what = "must be true, false or a list of limit names"
            self.fail(where, f"{what}, got {_describe(value)}")
            return frozenset()
        for i, name in enumerate(value):
            if name not in LIMIT_NAMES:
                self.fail(f"{where}[{i}]", f"unknown limit {_short(name)}")
            elif name not in spec:
                self.fail(f"{where}[{i}]", f"limit {name!r} is not set at this node")
        return frozenset(n for n in value if n in LIMIT_NAMES)


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _describe(value: object) -> str:
    """A value for a message: its kind, and its text unless it is a mapping or list."""
    if value is None or isinstance(value, dict | list):
        return _kind(value)
    return f"{_kind(value)} {_short(value)}"


def _short(value: object) -> str:
    """``repr`` cut to 80 characters: a message stays readable whatever the file holds."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return [[k, _canonical(value[k])] for k in sorted(value, key=str)]
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value
