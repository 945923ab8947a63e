"""``POST /v1/drills/{kill|storm|entitlement|collar}``: the CLI's drills, for ops over HTTP.

The same code as ``ledger drill`` (:mod:`ledger.ops.drills`): probes on the drill
account go through the gateways of ``DRILL_GATEWAYS`` with the order-entry
token ``DRILL_TOKEN``, and the answer is the drill's report as JSON. Both
come from the gateway's configuration, never from the request: a request
naming URLs would have the gateway send its token wherever an ops user
points it. The drill is audited with the calling token's name as ``by``.

The worker answering the request waits for the probes; a gateway that lists
itself needs another worker free to answer them (``LEDGER_GATEWAY_WORKERS``
of 2 or more, or threads). A storm waits at most ``MAX_WAIT_S`` so that the
request ends well within gunicorn's 30 s timeout.

A drill that ran answers 200 whatever it found: ``outcome`` is ``held`` or
``failed`` (``failures`` and the probes say why), as the CLI's exit code 0 or 1.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g

from gateway.api import api
from gateway.auth import requires
from gateway.bodies import MAX_WAIT_S, Drill, KillDrill, StormDrill
from gateway.connection import get_ledger
from gateway.errors import ApiCode, ApiError
from gateway.replies import DrillReport as Report
from gateway.wire import respond
from ledger.errors import InvalidInput
from ledger.ops.drills import (
    DRILLS,
    DrillReport,
    Gateway,
    collar_drill,
    entitlement_drill,
    kill_drill,
    storm_drill,
    target,
)
from ledger.store.tokens import Principal, Role

__all__ = ["bp", "MAX_WAIT_S", "gateways"]

bp = Blueprint("drills", __name__, url_prefix="/v1")

_NOT_CONFIGURED = (
    "drills are not configured on this gateway: set LEDGER_DRILL_GATEWAYS (the gateways' "
    "URLs) and LEDGER_DRILL_TOKEN (an order-entry token)"
)


def gateways(config: Any) -> list[str]:
    """The configured gateway URLs: a JSON list or a comma-separated text; checked."""
    raw = config.get("DRILL_GATEWAYS")
    urls = [u.strip() for u in raw.split(",")] if isinstance(raw, str) else raw
    if urls is None:
        return []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ValueError(f"LEDGER_DRILL_GATEWAYS must be a list of URLs, got {raw!r}")
    urls = [u for u in urls if u]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"LEDGER_DRILL_GATEWAYS: {url!r} is not an http:// or https:// URL")
    return urls


def run(body: Drill, name: str) -> Response:
    """Run one drill on the drill account and answer its report."""
    config = current_app.config
    urls, token = gateways(config), config.get("DRILL_TOKEN")
    if not urls or not token:
        raise ApiError(409, ApiCode.INVALID_REQUEST, _NOT_CONFIGURED)
    principal: Principal = g.principal
    lg = get_ledger()
    policy = lg.policy(refresh=True)
    if policy is not None and principal.firms:
        # A firm-bound ops token drills its firms' drill accounts only.
        try:
            firm = target(policy, body.account).firm
        except InvalidInput:
            firm = None  # the drill itself answers why, with the same words as the CLI
        if firm is not None and firm not in principal.firms:
            raise ApiError(
                403, ApiCode.FORBIDDEN, f"the drill account is in firm {firm}, not this token's"
            )
    timeout_s = int(config["DRILL_HTTP_TIMEOUT_MS"]) / 1000
    gws = [Gateway(url, str(token), timeout_s) for url in urls]
    by = principal.name
    report: DrillReport
    if isinstance(body, KillDrill):
        report = kill_drill(lg, gws, by=by, account=body.account, scope=body.scope)
    elif isinstance(body, StormDrill):
        report = storm_drill(
            lg,
            gws,
            by=by,
            account=body.account,
            max_orders=body.max_orders,
            max_wait_s=body.max_wait_s,
        )
    elif name == "entitlement":
        report = entitlement_drill(lg, gws, by=by, account=body.account)
    else:
        report = collar_drill(lg, gws, by=by, account=body.account)
    return respond(report.to_dict())


_SUMMARIES = {
    "kill": "Kill drill: kill the drill scope, prove every gateway refuses a probe, lift it",
    "storm": "Storm drill: a bounded burst meets MESSAGE_RATE, then CANCEL_RATIO",
    "entitlement": "Entitlement drill: probes breaking an entitlement meet NOT_ENTITLED",
    "collar": "Collar drill: a probe beyond the collar meets PRICE_COLLAR",
}
_ANSWERS: dict[int, tuple[str, Any]] = {
    200: ("The drill ran: its report; `outcome` failed when a control did not hold.", Report),
    403: ("Wrong role, or a drill account outside the token's firms.", None),
    409: ("Drills are not configured on this gateway (INVALID_REQUEST).", None),
}


def _view(name: str) -> Any:
    """The route of one drill: its own body and summary; an empty body takes the defaults."""
    bodies: dict[str, type[Drill]] = {"kill": KillDrill, "storm": StormDrill}
    body = bodies.get(name, Drill)
    view = requires(Role.OPS)(api(body, optional=True, answers=_ANSWERS)(run))
    view.summary = _SUMMARIES[name]  # type: ignore[attr-defined]
    return view


# One route per drill (not a converter): each has its own body, and /openapi.json names each.
for _name in DRILLS:
    bp.add_url_rule(
        f"/drills/{_name}",
        f"drill_{_name}",
        _view(_name),
        methods=["POST"],
        defaults={"name": _name},
    )
