"""``/dashboard``: a page for people (ops and desk heads), rendered on the server.

A utilization heatmap (node x limit, coloured by percent used), the active
kill switches and the recent rejects by reason. The page refreshes its live
part by itself (a small inline script fetching ``/dashboard/live``; a meta
refresh where scripts are off). No asset comes from outside the gateway.

Browsers cannot easily send an Authorization header, so here (and only here)
the token is also taken from a ``token`` query parameter or the
``ledger_token`` cookie. ``/dashboard?token=...`` answers with a redirect to
``/dashboard`` that sets the token in that HttpOnly cookie, so the token
does not stay in the address bar or the browser history.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from flask import (
    Blueprint,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from gateway import get_ledger, scoping
from gateway.auth import COOKIE, authenticate
from ledger.client import Ledger
from ledger.money import format_minor
from ledger.policy import KINDS, Policy
from ledger.results import UtilizationRow
from ledger.stress import format_factor
from ledger.tokens import Principal, Role

__all__ = ["bp", "heat_colour"]

bp = Blueprint("dashboard", __name__, template_folder="templates")

_ROLES = (Role.OPS, Role.DESK_HEAD)
_DECISION_OPS = ("reserve", "replace", "cancel", "basket")
_MONEY_LIMITS = ("max_gross_notional", "max_net_notional")
_COLUMN_ORDER = ("max_gross_notional", "max_net_notional", "max_open_orders")


def heat_colour(percent: float) -> str:
    """Green at 0 % through amber to red at 100 % and beyond."""
    p = max(0.0, min(percent, 100.0))
    return f"hsl({round(120 - 1.2 * p)}, 70%, {round(42 + 0.08 * p)}%)"


def _amount(row: UtilizationRow, value: int, policy: Policy) -> str:
    if row.limit_name in _MONEY_LIMITS:
        return f"{format_minor(value, policy.minor_units)} {policy.currency}"
    return str(value)


def _in_force(row: UtilizationRow, policy: Policy) -> str:
    """Beside a limit in force that is not the policy's: the policy value and why."""
    why = [f"override {row.override}"] if row.override else []
    if row.factor is not None:
        why.append(f"stress {format_factor(row.factor)}")
    if not why or row.policy_limit is None:
        return ""
    return f" in force; policy {_amount(row, row.policy_limit, policy)}, {', '.join(why)}"


def _heatmap(lg: Ledger, principal: Principal, policy: Policy | None) -> dict[str, Any]:
    if policy is None:
        return {"columns": [], "rows": []}
    if principal.role is Role.DESK_HEAD:
        scopes = [f"desk:{d}" for d in sorted(principal.desks) if policy.node(f"desk:{d}")]
    else:
        scopes = ["global"]
    desk_view = scoping.view(principal, policy)
    by_node: dict[str, dict[str, UtilizationRow]] = {}
    for scope in scopes:
        rows_here = lg.utilization(scope)
        for found in desk_view.rows(rows_here) if desk_view else rows_here:
            by_node.setdefault(found.scope, {})[found.limit_name] = found
    names = {n for cells in by_node.values() for n in cells}
    columns = [c for c in _COLUMN_ORDER if c in names] + sorted(names - set(_COLUMN_ORDER))
    kind_rank = {k: i for i, k in enumerate(KINDS)}
    rows = []
    for node in sorted(by_node, key=lambda s: (kind_rank.get(s.partition(":")[0], 9), s)):
        cells: list[dict[str, Any] | None] = []
        for col in columns:
            row = by_node[node].get(col)
            if row is None:
                cells.append(None)
                continue
            cells.append(
                {
                    "percent": round(row.percent, 1),
                    "colour": heat_colour(row.percent),
                    "title": f"{node} {col}: {_amount(row, row.used, policy)} of "
                    f"{_amount(row, row.limit, policy)}"
                    + _in_force(row, policy)
                    + (" (shadow)" if row.shadow else ""),
                    "shadow": row.shadow,
                }
            )
        rows.append({"scope": node, "cells": cells})
    return {"columns": columns, "rows": rows}


def _rejects(lg: Ledger, principal: Principal, policy: Policy | None) -> dict[str, Any]:
    tail = lg.audit_tail(int(current_app.config["AUDIT_SCAN"]))
    desk_view = scoping.view(principal, policy)
    recent = [
        r
        for r in tail
        if r.get("op") in _DECISION_OPS
        and r.get("code") not in (None, "OK")
        and (desk_view is None or desk_view.record(r))
    ]
    counts = Counter(str(r["code"]) for r in recent).most_common()
    latest = [
        {
            "t": r.get("t"),
            "op": r.get("op"),
            "order_id": r.get("order_id"),
            "code": r.get("code"),
            "scope": r.get("scope") or "",
        }
        for r in reversed(recent[-15:])
    ]
    return {"counts": counts, "latest": latest, "scanned": len(tail)}


def _context(principal: Principal) -> dict[str, Any]:
    lg = get_ledger()
    policy = lg.policy(refresh=True)
    kills = lg.kills()
    desk_view = scoping.view(principal, policy)
    return {
        "principal": principal,
        "heatmap": _heatmap(lg, principal, policy),
        "kills": desk_view.switches(kills) if desk_view else kills,
        "rejects": _rejects(lg, principal, policy),
        "currency": policy.currency if policy else "",
        "policy_loaded": policy is not None,
        "refresh_ms": int(current_app.config["DASHBOARD_REFRESH_MS"]),
    }


def _with_cookie(resp: BaseResponse) -> BaseResponse:
    if g.get("token_from_query"):
        resp.set_cookie(COOKIE, g.token, httponly=True, samesite="Strict", path="/dashboard")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/dashboard")
def page() -> BaseResponse:
    """The whole page. A token given in the query moves to the cookie, out of the address bar."""
    principal = authenticate(_ROLES, browser=True)
    if g.token_from_query:
        return _with_cookie(redirect(url_for("dashboard.page"), 303))
    return _with_cookie(make_response(render_template("dashboard.html", **_context(principal))))


@bp.get("/dashboard/live")
def live() -> BaseResponse:
    """The live part of the page, fetched by the page itself to refresh."""
    principal = authenticate(_ROLES, browser=True)
    return _with_cookie(make_response(render_template("_live.html", **_context(principal))))


@bp.app_template_filter("utc")
def _utc(at_ms: int | None) -> str:
    if not at_ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(at_ms) / 1000)) + "Z"
