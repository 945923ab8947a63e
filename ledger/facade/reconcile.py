"""Reconciliation against a drop copy: the venue's (or the OMS's) open orders and fills.

A drop copy is a list of records, JSON lines or CSV with a header row. A
record with a ``fill_id`` is a fill (``order_id``, ``fill_id``, ``qty``,
``price``); any other record is an order (``order_id``, ``account``,
``trader``, ``strategy``, ``symbol``, ``side``, ``qty``, ``price``,
``status``, optional ``venue``). ``status`` ``open`` (also ``new``,
``partially_filled``) means live at the venue; ``filled``, ``cancelled``,
``rejected``, ``expired``, ``done`` mean closed. Example: examples/dropcopy.jsonl.

:func:`reconcile` compares every named order with the ledger and reports each
difference; with ``apply`` it repairs every order in one script call
(lua/reconcileOrder-7.lua): missing orders are recorded as reconciled (never
refused, flagged when they put a node over a limit), orders closed at the
venue are released, missing fills are applied by fill id, and qty and price
become the venue's. Every repair is audited (op ``reconciled``) with who and why.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgpack

from ledger.errors import InvalidInput
from ledger.facade.core import LedgerCore, Unlocated
from ledger.facade.inputs import text
from ledger.facade.order import Order
from ledger.facade.results import UtilizationRow
from ledger.policy.money import Price, notional_minor, parse_price, parse_qty
from ledger.reasons import Reason
from ledger.store.keys import check_id

__all__ = [
    "OPEN_STATUSES",
    "CLOSED_STATUSES",
    "VenueOrder",
    "VenueFill",
    "Difference",
    "Repair",
    "ReconcileReport",
    "parse_records",
    "read_drop_copy",
    "reconcile",
]

OPEN_STATUSES: Final = frozenset({"open", "new", "partially_filled"})
CLOSED_STATUSES: Final = frozenset(
    {"filled", "cancelled", "canceled", "rejected", "expired", "done"}
)
#: Records of one drop copy: a bound on what one call holds in memory.
MAX_RECORDS: Final = 1_000_000


@dataclass(frozen=True)
class VenueFill:
    order_id: str
    fill_id: str
    qty: int
    price: Price


@dataclass(frozen=True)
class VenueOrder:
    order: Order
    qty: int
    price: Price
    #: Live at the venue (an open status).
    open: bool
    status: str
    fills: tuple[VenueFill, ...] = ()


@dataclass(frozen=True)
class Difference:
    """One way the ledger and the drop copy disagree about an order."""

    #: ``missing_order`` (open at the venue, unknown to the ledger),
    #: ``closed_in_ledger`` (open at the venue, closed in the ledger),
    #: ``open_in_ledger`` (open in the ledger, done at the venue),
    #: ``not_in_drop_copy`` (open in the ledger, absent from the drop copy;
    #: reported only, for the accounts the drop copy names), ``missing_fill``,
    #: ``qty_differs``, ``price_differs``, ``unknown_account`` (not in the
    #: policy: cannot be recorded), ``unknown_order`` (a fill of an order
    #: neither the drop copy nor the ledger has).
    kind: str
    order_id: str
    account: str
    ledger: str = ""
    venue: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "order_id": self.order_id,
            "account": self.account,
            "ledger": self.ledger,
            "venue": self.venue,
        }


@dataclass(frozen=True)
class Repair:
    """What ``apply`` did to one order."""

    order_id: str
    firm: str
    reason: Reason
    created: bool = False
    fills_applied: int = 0
    before: str = ""
    after: str = ""
    reserved: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "firm": self.firm,
            "reason": self.reason.value,
            "created": self.created,
            "fills_applied": self.fills_applied,
            "before": self.before,
            "after": self.after,
            "reserved": self.reserved,
            "message": self.message,
        }


@dataclass
class ReconcileReport:
    """Every difference found, and with ``apply`` what was repaired."""

    differences: list[Difference] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    #: Enforced limits exceeded, after the repairs, on a node a reconciled order passes.
    over: list[UtilizationRow] = field(default_factory=list)
    orders: int = 0
    fills: int = 0
    applied: bool = False

    @property
    def ok(self) -> bool:
        """Nothing differs (before any repair)."""
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "applied": self.applied,
            "orders": self.orders,
            "fills": self.fills,
            "differences": [d.to_dict() for d in self.differences],
            "repairs": [r.to_dict() for r in self.repairs],
            "over_limit": [r.to_dict() for r in self.over],
        }


# -- reading --------------------------------------------------------------------


def read_drop_copy(path: str | Path) -> list[dict[str, Any]]:
    """The records of a drop copy file: JSON lines, or CSV with a header row.

    JSON lines are recognized by a first non-blank character ``{``.
    """
    raw = Path(path).read_text(encoding="utf-8")
    return parse_text(raw)


def parse_text(raw: str) -> list[dict[str, Any]]:
    body = raw.lstrip()
    if body.startswith("{"):
        out = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"line {n}", f"not JSON: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise InvalidInput(f"line {n}", "must be a JSON object")
            out.append(record)
        return out
    reader = csv.DictReader(io.StringIO(raw))
    # Empty cells are absent fields: an order row leaves the fill columns blank.
    return [{k: v for k, v in row.items() if k and v not in (None, "")} for row in reader]


def _field(record: Mapping[str, Any], name: str, where: str) -> str:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"{where}: {name}", "is missing" if value is None else "must be a text")
    return str(value)


def _exact(fn: Any, record: Mapping[str, Any], name: str, where: str) -> Any:
    value = record.get(name)
    if isinstance(value, float):
        # A JSON number with a fraction is already a float: its exact value is lost.
        raise InvalidInput(f"{where}: {name}", "must be a decimal string, not a JSON float")
    try:
        return fn(_field(record, name, where), name)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {name}", exc.message) from exc


def parse_records(records: Iterable[Mapping[str, Any]]) -> list[VenueOrder | VenueFill]:
    """Validated orders and fills; the first bad record is named (``record N: field``)."""
    out: list[VenueOrder | VenueFill] = []
    for n, record in enumerate(records, 1):
        where = f"record {n}"
        if n > MAX_RECORDS:
            raise InvalidInput("records", f"at most {MAX_RECORDS} records per drop copy")
        if not isinstance(record, Mapping):
            raise InvalidInput(where, "must be an object")
        order_id = _field(record, "order_id", where)
        try:
            check_id(order_id, "order_id")
            if record.get("fill_id") is not None:
                fill_id = check_id(_field(record, "fill_id", where), "fill_id")
                out.append(
                    VenueFill(
                        order_id,
                        fill_id,
                        _exact(parse_qty, record, "qty", where),
                        _exact(parse_price, record, "price", where),
                    )
                )
                continue
            status = _field(record, "status", where).lower()
            if status not in OPEN_STATUSES | CLOSED_STATUSES:
                raise InvalidInput(
                    "status",
                    "must be one of " + ", ".join(sorted(OPEN_STATUSES | CLOSED_STATUSES)),
                )
            venue = record.get("venue")
            order = Order(
                order_id=order_id,
                trader=_field(record, "trader", where),
                strategy=_field(record, "strategy", where),
                account=_field(record, "account", where),
                symbol=_field(record, "symbol", where),
                side=_field(record, "side", where),
                qty=_exact(lambda v, _f: v, record, "qty", where),
                price=_exact(lambda v, _f: v, record, "price", where),
                venue=str(venue) if venue not in (None, "") else None,
            )
            valid = order.validate()
        except InvalidInput as exc:
            if exc.field.startswith(where):
                raise
            raise InvalidInput(f"{where}: {exc.field}", exc.message) from exc
        out.append(VenueOrder(order, valid.qty, valid.price, status in OPEN_STATUSES, status))
    return out


# -- comparing and repairing ---------------------------------------------------------


@dataclass
class _Held:
    """One order as the ledger holds it (state None: unknown, or only a remembered reject)."""

    firm: str
    state: str | None
    qty: int = 0
    price: Price | None = None
    cum: int = 0
    fills_seen: frozenset[str] = frozenset()


def _group(items: list[VenueOrder | VenueFill]) -> tuple[dict[str, VenueOrder], list[VenueFill]]:
    orders: dict[str, VenueOrder] = {}
    fills: list[VenueFill] = []
    for item in items:
        if isinstance(item, VenueFill):
            fills.append(item)
        elif item.order.order_id in orders:
            raise InvalidInput("order_id", f"{item.order.order_id} appears twice in the drop copy")
        else:
            orders[item.order.order_id] = item
    return orders, fills


def reconcile(
    ledger: LedgerCore,
    records: Iterable[Mapping[str, Any]] | Iterable[VenueOrder | VenueFill],
    *,
    by: str,
    reason: str = "reconciliation",
    apply: bool = False,
    firm: str | Iterable[str] | None = None,
) -> ReconcileReport:
    """Compare the drop copy with the ledger; with ``apply``, repair every order.

    ``firm`` (one id or several): the firms the caller acts for; an account of
    any other firm is reported as ``unknown_account`` and its orders are never
    read or touched, as the reserve path refuses it.

    Raises :class:`InvalidInput` (nothing changed) for a malformed drop copy and
    :class:`~ledger.errors.LedgerUnavailable` when Redis fails (orders already
    repaired stay repaired; running it again repairs the rest).
    """
    who = text("by", by, 200)
    why = text("reason", reason, 200)
    allowed = ledger._caller_firms(firm, None)
    items = list(records)
    parsed = (
        items if all(isinstance(i, VenueOrder | VenueFill) for i in items) else parse_records(items)  # type: ignore[arg-type]
    )
    orders, loose = _group(parsed)  # type: ignore[arg-type]
    fills_of: dict[str, list[VenueFill]] = {}
    for f in loose:
        fills_of.setdefault(f.order_id, []).append(f)
    report = ReconcileReport(orders=len(orders), fills=len(loose), applied=apply)

    # Which firm each order is in: its account's route. A fill without an
    # order record belongs to an order the ledger must already hold.
    firm_of: dict[str, str] = {}
    accounts: dict[str, str] = {}
    for oid, vo in orders.items():
        account = vo.order.account
        home = ledger.firm_of(f"account:{account}")
        if home is None or (allowed is not None and home not in allowed):
            report.differences.append(Difference("unknown_account", oid, account))
            continue
        firm_of[oid] = home
        accounts[account] = home
    for oid in fills_of:
        if oid not in orders:
            firm_of.setdefault(oid, "")
    held = _read_held(ledger, firm_of, fills_of, allowed)
    for oid in fills_of:
        if oid not in orders and oid not in firm_of:
            report.differences.append(Difference("unknown_order", oid, ""))

    todo: list[tuple[str, _Held, VenueOrder | None, list[VenueFill]]] = []
    for oid in firm_of:
        h = held[oid]
        named = orders.get(oid)
        if named is None and h.state is None:
            report.differences.append(Difference("unknown_order", oid, ""))
            continue
        new_fills = [f for f in fills_of.get(oid, []) if f.fill_id not in h.fills_seen]
        account = named.order.account if named else ""
        found = _compare(oid, account, named, h, new_fills)
        report.differences += found
        if found:
            todo.append((oid, h, named, new_fills))
    report.differences += _not_in_drop_copy(ledger, accounts, set(orders))
    if apply:
        touched: set[str] = set()
        for oid, h, named, new_fills in todo:
            repair = _repair(ledger, h, oid, named, new_fills, who, why)
            report.repairs.append(repair)
            if repair.reason is Reason.OK:
                touched |= _scopes(ledger, h.firm, oid)
        if touched:
            report.over = [
                row
                for row in ledger.utilization()
                if row.scope in touched and row.used > row.limit and not row.shadow
            ]
    return report


def _read_held(
    ledger: LedgerCore,
    firm_of: dict[str, str],
    fills_of: dict[str, list[VenueFill]],
    allowed: list[str] | None,
) -> dict[str, _Held]:
    """The ledger's view of every named order, in one pipelined round trip.

    A fill-only order id is looked up through the ledger's by-id rule (its firm
    is whichever one firm holds it).
    """
    k = ledger.keys
    for oid, located in list(firm_of.items()):
        if not located:
            try:
                firm_of[oid] = ledger._locate(oid, allowed, None)
            except Unlocated:
                # Unknown, or held by several firms: reported, not repaired.
                del firm_of[oid]
    ids = list(firm_of)
    with ledger._redis_errors():
        pipe = ledger.redis.pipeline(transaction=False)
        for oid in ids:
            key = k.order(firm_of[oid], oid)
            pipe.hmget(key, "st", "qty", "pn", "ps", "cum")
            wanted = [f"f|{f.fill_id}" for f in fills_of.get(oid, [])]
            pipe.hmget(key, wanted or ["f|"])
        answers = pipe.execute()
    out: dict[str, _Held] = {}
    for i, oid in enumerate(ids):
        st, qty, pn, ps, cum = (a.decode() if isinstance(a, bytes) else a for a in answers[2 * i])
        state = None if st in (None, "rejected") else str(st)
        if state is None:
            out[oid] = _Held(firm_of[oid], None)
            continue
        seen = answers[2 * i + 1]
        names = [f.fill_id for f in fills_of.get(oid, [])]
        out[oid] = _Held(
            firm_of[oid],
            state,
            int(qty),
            Price(int(pn), int(ps)),
            int(cum),
            frozenset(n for n, s in zip(names, seen, strict=False) if s is not None),
        )
    return out


def _compare(
    oid: str, account: str, vo: VenueOrder | None, h: _Held, new_fills: list[VenueFill]
) -> list[Difference]:
    found: list[Difference] = []
    if vo is not None:
        venue_state = "open" if vo.open else vo.status
        if h.state is None and (vo.open or new_fills):
            found.append(Difference("missing_order", oid, account, "", venue_state))
        elif h.state is not None and h.state != "open" and vo.open:
            # A ledger order filled to its qty stays closed however the venue reads it.
            if vo.qty > h.cum + sum(f.qty for f in new_fills):
                found.append(Difference("closed_in_ledger", oid, account, h.state, venue_state))
        elif h.state == "open" and not vo.open:
            found.append(Difference("open_in_ledger", oid, account, "open", venue_state))
        if h.state is not None:
            if h.qty != vo.qty:
                found.append(Difference("qty_differs", oid, account, str(h.qty), str(vo.qty)))
            if h.price != vo.price:
                found.append(Difference("price_differs", oid, account, str(h.price), str(vo.price)))
    for f in new_fills:
        found.append(Difference("missing_fill", oid, account, "", f"{f.fill_id} {f.qty}@{f.price}"))
    return found


def _not_in_drop_copy(
    ledger: LedgerCore, accounts: dict[str, str], named: set[str]
) -> list[Difference]:
    """Orders open in the ledger for an account the drop copy names, but absent from it."""
    if not accounts:
        return []
    k = ledger.keys
    items = sorted(accounts.items())
    with ledger._redis_errors():
        pipe = ledger.redis.pipeline(transaction=False)
        for account, firm in items:
            prefix = f"account:{account}|"
            pipe.zrangebylex(k.open_index(firm), f"[{prefix}", f"({prefix}\xff")
        answers = pipe.execute()
    out = []
    for (account, _firm), members in zip(items, answers, strict=True):
        for m in members:
            oid = (m.decode() if isinstance(m, bytes) else m).partition("|")[2]
            if oid not in named:
                out.append(Difference("not_in_drop_copy", oid, account, "open", ""))
    return out


def _repair(
    ledger: LedgerCore,
    h: _Held,
    oid: str,
    vo: VenueOrder | None,
    new_fills: list[VenueFill],
    who: str,
    why: str,
) -> Repair:
    k = ledger.keys
    firm = h.firm
    if vo is None:
        # Fills alone: the order keeps its fields and its state.
        args_order: list[Any] = ["open" if h.state == "open" else "closed", "", "", "", "", ""]
        args_order += ["", "", h.qty, h.price[0] if h.price else 0, h.price[1] if h.price else 0]
        args_order += ["", ""]
    else:
        route = ledger._route(f"account:{vo.order.account}") or f"{firm}|"
        desk = route.partition("|")[2]
        o = vo.order
        units = ledger._units()
        if units is not None:
            notional_minor(vo.qty, vo.price, units)
        fingerprint = o.validate().fingerprint
        args_order = [
            "open" if vo.open else "closed",
            firm,
            desk,
            o.account,
            o.strategy,
            o.trader,
            o.symbol,
            o.side,
            vo.qty,
            vo.price.numerator,
            vo.price.scale,
            fingerprint,
            o.venue or "",
        ]
    fill_args: list[Any] = []
    for f in new_fills:
        fill_args += [f.fill_id, f.qty, f.price.numerator, f.price.scale]
    raw = ledger._call(
        ledger.scripts.reconcile_order,
        [
            k.order(firm, oid),
            k.agg(firm),
            k.open_index(firm),
            k.audit(firm),
            k.positions(firm),
            k.policy(firm),
            k.expiry(firm),
        ],
        [who, why, ledger.audit_maxlen, oid, *args_order, *fill_args],
    )

    def s(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    return Repair(
        oid,
        firm,
        Reason(s(raw[0])),
        bool(raw[1]),
        int(raw[2]),
        s(raw[3]),
        s(raw[4]),
        int(raw[5]),
        s(raw[6]) if len(raw) > 6 else "",
    )


def _scopes(ledger: LedgerCore, firm: str, oid: str) -> set[str]:
    """The five nodes of a stored order."""
    blob = ledger._call(ledger.redis.hget, ledger.keys.order(firm, oid), "o")
    if blob is None:
        return set()
    shape = msgpack.unpackb(blob, raw=False)
    kinds = ("firm", "desk", "account", "strategy", "trader")
    return {f"{kind}:{node}" for kind, node in zip(kinds, shape[:5], strict=True)}
