"""``/dashboard``: a page for people (ops and desk heads), rendered on the server.

One card per node: each limit by its readable name with the amount used
against the limit in force (money with the currency, counts as counts),
coloured by percent used, and the policy's value where an override or stress
puts another limit in force; the node's last hour as two inline SVG
sparklines, peak utilization and rejects (:mod:`gateway.history`). Then the
active kill switches and the recent rejects by reason and one by one
(account, trader, symbol). Every time is UTC, and the page says so. The page refreshes its live
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

import gateway.history as history
import gateway.scoping as scoping
from gateway.api import api
from gateway.auth import COOKIE, authenticate
from gateway.connection import get_ledger
from ledger.facade.client import Ledger
from ledger.facade.results import UtilizationRow
from ledger.facade.stress import format_factor
from ledger.policy import KINDS, Policy
from ledger.policy.money import format_minor
from ledger.store.tokens import Principal, Role

__all__ = ["bp", "heat_colour", "limit_label"]

bp = Blueprint("dashboard", __name__, template_folder="templates")

_ROLES = (Role.OPS, Role.DESK_HEAD)
_DECISION_OPS = ("reserve", "replace", "cancel", "basket")
_MONEY_LIMITS = ("max_gross_notional", "max_net_notional", "max_daily_loss")
_COLUMN_ORDER = ("max_gross_notional", "max_net_notional", "max_open_orders", "max_daily_loss")
_NAMES = {
    "max_gross_notional": "Gross notional",
    "max_net_notional": "Net notional",
    "max_open_orders": "Open orders",
    "max_daily_loss": "Daily loss",
}
_MESSAGE_TYPES = {"all": "all", "new": "new", "replace": "replaces", "cancel": "cancels"}
_WINDOW_NAMES = {"per_second": "1 s", "per_10s": "10 s", "per_minute": "1 min", "per_hour": "1 h"}


def heat_colour(percent: float) -> str:
    """Green at 0 % through amber to red at 100 % and beyond."""
    p = max(0.0, min(percent, 100.0))
    return f"hsl({round(120 - 1.2 * p)}, 70%, {round(42 + 0.08 * p)}%)"


def limit_label(name: str) -> str:
    """``messages.new.per_10s`` -> ``Messages per 10 s (new)``; unknown names as they are."""
    if name in _NAMES:
        return _NAMES[name]
    kind, _, rest = name.partition(".")
    mtype, _, window = rest.partition(".")
    if kind == "messages" and mtype in _MESSAGE_TYPES and window in _WINDOW_NAMES:
        return f"Messages per {_WINDOW_NAMES[window]} ({_MESSAGE_TYPES[mtype]})"
    return name


def money(minor: int, minor_units: int) -> str:
    """Minor units in major units with thousands grouped: ``110000000, 2 -> "1,100,000.00"``."""
    whole, dot, fraction = format_minor(abs(minor), minor_units).partition(".")
    return f"{'-' if minor < 0 else ''}{int(whole):,}{dot}{fraction}"


def _amount(row: UtilizationRow, value: int, policy: Policy) -> str:
    if row.limit_name in _MONEY_LIMITS:
        return f"{money(value, policy.minor_units)} {policy.currency}"
    return f"{value:,}"


def _in_force(row: UtilizationRow, policy: Policy) -> str:
    """For a limit in force that is not the policy's: the policy value and why, else ``""``."""
    why = [f"override {row.override}"] if row.override else []
    if row.factor is not None:
        why.append(f"stress {format_factor(row.factor)}")
    if not why or row.policy_limit is None:
        return ""
    return f"in force: {', '.join(why)}; policy {_amount(row, row.policy_limit, policy)}"


def _cell(row: UtilizationRow, policy: Policy) -> dict[str, Any]:
    is_money = row.limit_name in _MONEY_LIMITS
    return {
        "limit": row.limit_name,
        "label": limit_label(row.limit_name),
        "percent": round(row.percent, 1),
        "colour": heat_colour(row.percent),
        # Money cells name the currency once, after the limit.
        "used": money(row.used, policy.minor_units) if is_money else f"{row.used:,}",
        "of": _amount(row, row.limit, policy),
        "in_force": _in_force(row, policy),
        "shadow": row.shadow,
    }


def _nodes(
    lg: Ledger,
    principal: Principal,
    policy: Policy | None,
    now_ms: int,
    reject_records: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One card per node: its limits with amounts, its last hour as sparklines."""
    if policy is None:
        return []
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
    samples = history.read(lg, now_ms)
    rejects = history.reject_counts(reject_records, now_ms)
    kind_rank = {k: i for i, k in enumerate(KINDS)}
    order = {c: i for i, c in enumerate(_COLUMN_ORDER)}
    out = []
    for node in sorted(by_node, key=lambda s: (kind_rank.get(s.partition(":")[0], 9), s)):
        limits = sorted(by_node[node], key=lambda n: (order.get(n, len(order)), n))
        out.append(
            {
                "scope": node,
                "cells": [_cell(by_node[node][n], policy) for n in limits],
                "util": history.utilization_spark(node, samples, now_ms),
                "rejects": history.reject_spark(rejects.get(node)),
            }
        )
    return out


def _reject_records(
    lg: Ledger, principal: Principal, policy: Policy | None
) -> tuple[list[dict[str, Any]], int]:
    """The rejects among the newest audit records the token may see, and how many were read."""
    tail = lg.audit_tail(int(current_app.config["AUDIT_SCAN"]))
    desk_view = scoping.view(principal, policy)
    recent = [
        r
        for r in tail
        if r.get("op") in _DECISION_OPS
        and r.get("code") not in (None, "OK")
        and (desk_view is None or desk_view.record(r))
    ]
    return recent, len(tail)


def _rejects(recent: list[dict[str, Any]], scanned: int, tail_from: int | None) -> dict[str, Any]:
    counts = Counter(str(r["code"]) for r in recent).most_common()
    latest = [
        {
            "t": r.get("t"),
            "op": r.get("op"),
            "order_id": r.get("order_id") or r.get("basket"),
            "code": r.get("code"),
            "scope": r.get("scope") or "",
            "account": r.get("account") or "",
            "trader": r.get("trader") or "",
            "symbol": r.get("sym") or "",
        }
        for r in reversed(recent[-15:])
    ]
    return {"counts": counts, "latest": latest, "scanned": scanned, "since": tail_from}


def _context(principal: Principal) -> dict[str, Any]:
    lg = get_ledger()
    policy = lg.policy(refresh=True)
    history.sample(lg, int(current_app.config["DASHBOARD_SAMPLE_MS"]))
    now_ms = history.server_ms(lg)
    kills = lg.kills()
    desk_view = scoping.view(principal, policy)
    recent, scanned = _reject_records(lg, principal, policy)
    times = [t for r in recent if isinstance(t := r.get("t"), int)]
    return {
        "principal": principal,
        "nodes": _nodes(lg, principal, policy, now_ms, recent),
        "kills": desk_view.switches(kills) if desk_view else kills,
        "rejects": _rejects(recent, scanned, min(times) if times else None),
        "currency": policy.currency if policy else "",
        "policy_loaded": policy is not None,
        "refresh_ms": int(current_app.config["DASHBOARD_REFRESH_MS"]),
        "now_ms": now_ms,
        "spark": {"w": history.WIDTH, "h": history.HEIGHT},
    }


def _with_cookie(resp: BaseResponse) -> BaseResponse:
    if g.get("token_from_query"):
        resp.set_cookie(COOKIE, g.token, httponly=True, samesite="Strict", path="/dashboard")
    resp.headers["Cache-Control"] = "no-store"
    return resp


_AUTH = {
    401: ("No token, or an unknown or revoked one (UNAUTHORIZED).", None),
    403: ("The token's role is not ops or desk-head (FORBIDDEN).", None),
    503: ("Redis unreachable, slow or failing (RISK_UNAVAILABLE).", None),
}
_BROWSER = (
    "The token, as a browser can send it (else the Authorization header or the `ledger_token` "
    "cookie); the page moves it to the cookie."
)


@bp.get("/dashboard")
@api(
    answers={200: ("The page.", "text/html"), **_AUTH},
    roles=_ROLES,
    query={"token": _BROWSER},
)
def page() -> BaseResponse:
    """The risk dashboard (HTML).

    A token given in the query moves to the cookie, out of the address bar.
    """
    principal = authenticate(_ROLES, browser=True)
    if g.token_from_query:
        return _with_cookie(redirect(url_for("dashboard.page"), 303))
    return _with_cookie(make_response(render_template("dashboard.html", **_context(principal))))


@bp.get("/dashboard/live")
@api(answers={200: ("The fragment.", "text/html"), **_AUTH}, roles=_ROLES)
def live() -> BaseResponse:
    """The dashboard's live part (HTML fragment), fetched by the page itself to refresh."""
    principal = authenticate(_ROLES, browser=True)
    return _with_cookie(make_response(render_template("_live.html", **_context(principal))))


@bp.app_template_filter("utc")
def _utc(at_ms: int | None) -> str:
    if not at_ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(at_ms) / 1000)) + "Z"
