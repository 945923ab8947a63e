"""Rendering for the ``ledger`` command line: aligned tables for people, dicts for ``--json``.

Nothing here talks to Redis; every function turns ledger results into text
or into JSON-ready dicts, so the commands in :mod:`ledger.cli` stay short.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ledger.facade.cancels import CancelInstruction
from ledger.facade.results import Kill, KillResult, UtilizationRow
from ledger.facade.states import ScopeState
from ledger.facade.stress import format_factor
from ledger.facade.views import CheckReport
from ledger.policy.model import MONEY_LIMITS, Policy
from ledger.policy.money import format_minor

__all__ = [
    "table",
    "to_json",
    "format_ms",
    "safe_url",
    "amount",
    "utilization_table",
    "utilization_dict",
    "kills_table",
    "kill_dict",
    "kill_lines",
    "cancel_lines",
    "states_table",
    "states_dicts",
    "states_lines",
    "policy_lines",
    "status_dict",
    "status_lines",
    "check_dict",
    "check_lines",
]


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()
) -> str:
    """Columns padded to their widest cell, two spaces apart; ``right`` columns right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def to_json(value: Any) -> str:
    """One line of JSON with sorted keys, for scripts."""
    return json.dumps(value, sort_keys=True)


def format_ms(at_ms: int | None) -> str:
    """Epoch milliseconds as UTC ISO-8601 to the second, ``-`` when unknown."""
    if at_ms is None:
        return "-"
    return datetime.fromtimestamp(at_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    except ValueError:
        return url


def amount(limit_name: str, value: int, minor_units: int) -> str:
    """Money limits in major units (``1872500`` -> ``18725.00``); counts as integers."""
    if limit_name in MONEY_LIMITS:
        return format_minor(value, minor_units)
    return str(value)


def utilization_table(rows: Sequence[UtilizationRow], policy: Policy) -> str:
    body = [
        [
            r.scope,
            r.limit_name + (" (shadow)" if r.shadow else ""),
            amount(r.limit_name, r.used, policy.minor_units),
            amount(r.limit_name, r.limit, policy.minor_units),
            f"{r.percent:.1f}%",
        ]
        for r in rows
    ]
    headers = ["SCOPE", "LIMIT", "USED", "MAX", "PERCENT"]
    # MAX is the limit in force; where an override or stress changes one, the
    # policy's value and why follow in a last column.
    if any(r.override or r.factor is not None for r in rows):
        headers.append("POLICY")
        for line, r in zip(body, rows, strict=True):
            line.append(_policy_cell(r, policy.minor_units))
    return table(headers, body, right={2, 3, 4})


def _policy_cell(r: UtilizationRow, minor_units: int) -> str:
    """The policy's value where the limit in force differs, and why (override, stress)."""
    why = [r.override] if r.override else []
    if r.factor is not None:
        why.append(f"stress {format_factor(r.factor)}")
    if not why:
        return ""
    policy_value = r.limit if r.policy_limit is None else r.policy_limit
    return f"{amount(r.limit_name, policy_value, minor_units)} ({', '.join(why)})"


def utilization_dict(scope: str, rows: Sequence[UtilizationRow], policy: Policy) -> dict[str, Any]:
    """Integers stay in minor units; ``used_major``/``limit_major`` are decimal strings."""
    out = []
    for r in rows:
        row = r.to_dict()
        money = r.limit_name in MONEY_LIMITS
        row["unit"] = "minor" if money else "count"
        if money:
            row["used_major"] = format_minor(r.used, policy.minor_units)
            row["limit_major"] = format_minor(r.limit, policy.minor_units)
            row["policy_limit_major"] = format_minor(row["policy_limit"], policy.minor_units)
        out.append(row)
    return {
        "scope": scope,
        "currency": policy.currency,
        "minor_units": policy.minor_units,
        "rows": out,
    }


def kills_table(kills: Sequence[Kill]) -> str:
    body = [[k.scope, k.by or "-", format_ms(k.at_ms), k.reason or "-"] for k in kills]
    return table(["SCOPE", "BY", "SINCE", "REASON"], body)


def kill_dict(
    op: str,
    result: KillResult,
    by: str,
    reason: str,
    cancels: Sequence[CancelInstruction] | None = None,
) -> dict[str, Any]:
    """``cancels`` (asked for with ``--cancel-open``) adds the instructions under ``cancels``."""
    doc = {
        "op": op,
        "scope": result.scope,
        "by": by,
        "reason": reason,
        "already": result.already,
        "open_orders": list(result.open_orders),
    }
    if cancels is not None:
        doc["cancels"] = [c.to_dict() for c in cancels]
    return doc


def cancel_lines(cancels: Sequence[CancelInstruction]) -> list[str]:
    """The cancel instructions as a table, one order per line."""
    head = f"cancel instructions: {len(cancels)}"
    if not cancels:
        return [head]
    body = [
        ["cancel", c.order_id, c.account, c.strategy, c.trader, c.symbol, c.side, str(c.leaves_qty)]
        for c in cancels
    ]
    headers = ["ACTION", "ORDER", "ACCOUNT", "STRATEGY", "TRADER", "SYMBOL", "SIDE", "LEAVES"]
    return [head, *table(headers, body, right={7}).splitlines()]


def kill_lines(
    op: str,
    result: KillResult,
    by: str,
    reason: str,
    cancels: Sequence[CancelInstruction] | None = None,
) -> list[str]:
    if op == "kill":
        head = (
            f"{result.scope} was already killed; nothing changed"
            if result.already
            else f"killed {result.scope} (by {by}: {reason})"
        )
    else:
        head = (
            f"{result.scope} was not killed; nothing changed"
            if result.already
            else f"lifted the kill on {result.scope} (by {by}: {reason})"
        )
    lines = [head]
    if cancels is not None:
        return [*lines, *cancel_lines(cancels)]
    if op == "kill" or result.open_orders:
        lines.append(f"open orders to cancel: {len(result.open_orders)}")
        lines += [f"  {order_id}" for order_id in result.open_orders]
    return lines


def policy_lines(info: dict[str, Any], policy: Policy) -> list[str]:
    rows = [
        ["revision", str(info["revision"])],
        ["sha256", info["sha256"]],
        ["loaded by", info["by"] or "-"],
        ["loaded at", info["at"]],
        ["source", info["source"] or "-"],
        ["currency", f"{policy.currency} ({policy.minor_units} minor units)"],
        ["nodes", f"{len(policy.nodes)} (firms: {', '.join(policy.firms)})"],
    ]
    return table(["POLICY", ""], rows).splitlines()


def states_table(states: Sequence[ScopeState]) -> str:
    body = [
        [
            s.scope,
            s.state,
            s.source,
            s.by or "-",
            format_ms(s.at_ms),
            "auto" if s.auto else "-",
            s.cause or "-",
            s.reason or "-",
        ]
        for s in states
    ]
    return table(["SCOPE", "STATE", "SOURCE", "BY", "SINCE", "AUTO", "CAUSE", "REASON"], body)


def states_dicts(states: Sequence[ScopeState]) -> list[dict[str, Any]]:
    return [s.to_dict() | {"at": format_ms(s.at_ms)} for s in states]


def states_lines(states: Sequence[ScopeState]) -> list[str]:
    if not states:
        return ["strategy and account states: all enabled"]
    return [
        f"strategy and account states: {len(states)} not enabled",
        *states_table(states).splitlines(),
    ]


def status_dict(
    info: dict[str, Any] | None, kills: Sequence[Kill], states: Sequence[ScopeState] = ()
) -> dict[str, Any]:
    return {
        "states": states_dicts(states),
        "policy": info,
        "kills": [
            {
                "scope": k.scope,
                "by": k.by,
                "reason": k.reason,
                "at_ms": k.at_ms,
                "at": format_ms(k.at_ms),
            }
            for k in kills
        ],
    }


def status_lines(
    info: dict[str, Any] | None, kills: Sequence[Kill], states: Sequence[ScopeState] = ()
) -> list[str]:
    if info is None:
        lines = ["policy: none loaded"]
    else:
        lines = [
            f"policy: revision {info['revision']}, sha256 {info['sha256']}, "
            f"loaded by {info['by']} at {info['at']}"
        ]
    if not kills:
        lines.append("kill switches: none active")
    else:
        lines += [f"kill switches: {len(kills)} active", *kills_table(kills).splitlines()]
    return [*lines, *states_lines(states)]


def check_dict(report: CheckReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "nodes": report.nodes,
        "orders": report.orders,
        "breaches": list(report.breaches),
        "over": [r.to_dict() for r in report.over],
        "reconciled": dict(report.reconciled),
    }


def check_lines(report: CheckReport) -> list[str]:
    if report.ok:
        return [f"OK: {report.nodes} nodes and {report.orders} orders checked, no breach"]
    return [f"{len(report.breaches)} breach(es):", *(f"  {b}" for b in report.breaches)]
