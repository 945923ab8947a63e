"""The drills that prove a control refuses: kill switch, message storm, entitlement, collar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from ledger.errors import InvalidInput
from ledger.facade.client import Ledger
from ledger.ops.drills.probes import (
    MAX_BURST,
    DrillReport,
    Gateway,
    Probe,
    _gateways,
    _path,
    _probe,
    _reference,
    _Run,
    _start,
)
from ledger.policy.model import Node


def kill_drill(
    lg: Ledger,
    gateways: Iterable[Gateway],
    *,
    by: str,
    account: str | None = None,
    scope: str | None = None,
) -> DrillReport:
    """Kill a drill scope, prove every gateway refuses a probe under it, lift the kill.

    ``scope`` defaults to the drill account; a desk or the firm may be killed
    only in a drill firm.
    """
    gws = _gateways(gateways)
    run, policy = _start(lg, "kill", by, account)
    t = run.report.target
    scope = scope or f"account:{t.account}"
    on_path = {f"account:{t.account}": True, f"desk:{t.desk}": t.drill_firm}
    on_path[f"firm:{t.firm}"] = t.drill_firm
    if not on_path.get(scope, False):
        raise InvalidInput(
            "scope",
            f"{scope} is not a drill scope of account {t.account}: kill the drill account, "
            "or its desk or firm when the whole firm is a drill firm",
        )
    run.report.scope = scope
    active = {k.scope: k for k in lg.kills()}
    for name in ("global", scope):
        if name in active:
            raise InvalidInput(
                "scope",
                f"{name} is already killed (by {active[name].by}): the drill would prove "
                "nothing or lift a real kill; lift it first",
            )
    price, _ = _reference(lg, t)
    why = f"drill kill {run.report.run_id}"
    run.audit("started")
    lg.kill(scope, by=run.report.by, reason=why)
    acknowledged = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(gws)) as pool:
            probes = list(
                pool.map(
                    lambda item: _probe(
                        run,
                        item[1],
                        item[0],
                        f"order under {scope}",
                        "KILL_SWITCH",
                        price or "1",
                        since=acknowledged,
                    ),
                    enumerate(gws),
                )
            )
    finally:
        lg.unkill(scope, by=run.report.by, reason=f"{why}: done")
    run.report.probes += probes
    run.report.notes.append(
        f"ms = from the kill's acknowledgement to the gateway's refusal; {scope} lifted"
    )
    return run.finish()


def entitlement_drill(
    lg: Ledger, gateways: Iterable[Gateway], *, by: str, account: str | None = None
) -> DrillReport:
    """Probes that break an entitlement, through every gateway: each must be ``NOT_ENTITLED``."""
    gws = _gateways(gateways)
    run, policy = _start(lg, "entitlement", by, account)
    t = run.report.target
    acc = policy.node(f"account:{t.account}")
    assert acc is not None
    cases: list[tuple[str, dict[str, Any]]] = []
    for n in sorted(policy.nodes.values(), key=lambda n: n.scope):
        if n.kind == "trader" and n.firm == t.firm and t.account not in n.accounts:
            cases.append((f"trader {n.id} not entitled to {t.account}", {"trader": n.id}))
            break
    for n in sorted(policy.nodes.values(), key=lambda n: n.scope):
        if n.kind == "strategy" and n.firm == t.firm and t.account not in n.accounts:
            cases.append((f"strategy {n.id} not entitled to {t.account}", {"strategy": n.id}))
            break
    if acc.symbols is not None:
        cases.append((f"symbol DRILLX not allowed on {t.account}", {"symbol": "DRILLX"}))
    if acc.venues is not None:
        cases.append((f"venue DRILLV not allowed on {t.account}", {"venue": "DRILLV"}))
    if not cases:
        raise InvalidInput(
            "entitlement",
            f"nothing to probe on {t.account}: the firm has no trader or strategy not entitled "
            "to it, and it restricts no symbols or venues",
        )
    price, _ = _reference(lg, t)
    run.audit("started")
    for ix, gw in enumerate(gws):
        for case, changes in cases:
            run.report.probes.append(
                _probe(run, gw, ix, case, "NOT_ENTITLED", price or "1", **changes)
            )
    return run.finish()


def collar_drill(
    lg: Ledger, gateways: Iterable[Gateway], *, by: str, account: str | None = None
) -> DrillReport:
    """A probe priced beyond the collar, through every gateway: each must be ``PRICE_COLLAR``."""
    gws = _gateways(gateways)
    run, policy = _start(lg, "collar", by, account)
    t = run.report.target
    tier = policy.controls.tier_of(t.symbol) if policy.controls.tiers else None
    if tier is None:
        raise InvalidInput(
            "collar", f"{t.symbol} is in no tier of the policy: no collar applies to it"
        )
    price, fresh = _reference(lg, t)
    if price is None or not fresh:
        raise InvalidInput(
            "collar",
            f"{t.symbol} has no fresh reference price in firm {t.firm} (or is halted): set one "
            f"with ledger prices set {t.symbol} PRICE",
        )
    # Beyond the collar by one percent of the price more than the collar itself.
    bps = 2 * tier.price_collar_bps + 100
    probe_price = (Decimal(price) * (10_000 + bps) / 10_000).quantize(Decimal("0.0001"))
    run.audit("started")
    for ix, gw in enumerate(gws):
        run.report.probes.append(
            _probe(
                run,
                gw,
                ix,
                f"buy {t.symbol} at {probe_price.normalize()} (reference {price}, collar "
                f"{tier.price_collar_bps} bps)",
                "PRICE_COLLAR",
                str(probe_price.normalize()),
            )
        )
    return run.finish()


def _message_caps(path: list[Node]) -> list[tuple[str, str, int]]:
    """``(scope, window, cap)`` of every window that counts new orders, tightest first."""
    caps = []
    for node in path:
        for mtype in ("all", "new"):
            limits = node.limits.messages.get(mtype)
            for window, _, cap in limits.windows() if limits else ():
                if cap and "messages" not in node.limits.shadow:
                    caps.append((node.scope, f"messages.{mtype}.{window}", int(cap)))
    return sorted(caps, key=lambda c: c[2])


def storm_drill(
    lg: Ledger,
    gateways: Iterable[Gateway],
    *,
    by: str,
    account: str | None = None,
    max_orders: int = 1000,
    max_wait_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DrillReport:
    """A burst of new orders must meet ``MESSAGE_RATE``; then cancels must trip ``CANCEL_RATIO``.

    At most ``max_orders`` new orders (and as many cancels) are sent; every
    order placed is released at the end.
    """
    gws = _gateways(gateways)
    if isinstance(max_orders, bool) or not 1 <= max_orders <= MAX_BURST:
        raise InvalidInput("max_orders", f"must be a whole number from 1 to {MAX_BURST}")
    run, policy = _start(lg, "storm", by, account)
    t = run.report.target
    if not t.drill_firm:
        raise InvalidInput(
            "account",
            f"a storm needs an account of a drill firm: a burst counts against every node of "
            f"its path, and firm:{t.firm} is not a drill firm",
        )
    path = _path(policy, t)
    caps = _message_caps(path)
    if caps and caps[0][2] + 1 > max_orders:
        scope, window, cap = caps[0]
        raise InvalidInput(
            "max_orders",
            f"the tightest window ({scope} {window}) admits {cap}; send at least "
            f"{cap + 1} (--max {cap + 1})",
        )
    price, _ = _reference(lg, t)
    price = price or "1"
    run.audit("started")
    placed: list[tuple[Gateway, str]] = []
    try:
        if not caps:
            run.report.failures.append(
                "MESSAGE_RATE: no message limit on the path; nothing stops a storm"
            )
        else:
            scope, window, cap = caps[0]
            _burst(run, gws, price, min(max_orders, cap + max(5, cap // 10)), cap, placed)
            ratio = [n for n in path if n.limits.cancel_to_new is not None]
            if ratio:
                _cancel_storm(run, gws, price, ratio[0], placed, max_orders, max_wait_s, sleep)
            else:
                run.report.notes.append("CANCEL_RATIO: not configured on the path")
    finally:
        released = [run.release(gw, oid) for gw, oid in placed]
        failed = [r for r in released if r != "released"]
        run.report.notes.append(f"released {len(released) - len(failed)} of {len(placed)} orders")
        if failed:
            run.report.failures.append(f"could not release {len(failed)} drill orders: {failed[0]}")
    return run.finish()


def _burst(
    run: _Run,
    gws: list[Gateway],
    price: str,
    count: int,
    cap: int,
    placed: list[tuple[Gateway, str]],
) -> None:
    """``count`` new orders over the gateways in parallel: MESSAGE_RATE must refuse some."""

    def send(i: int) -> tuple[Gateway, str, int | None, str | None]:
        gw = gws[i % len(gws)]
        order_id = run.order_id(i % len(gws))
        status, body, _ = gw.post("/v1/orders", run.order(order_id, price))
        return gw, order_id, status, body.get("reason")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(8, count)) as pool:
        answers = list(pool.map(send, range(count)))
    ms = (time.monotonic() - started) * 1000
    reasons: dict[str, int] = {}
    for gw, order_id, status, reason in answers:
        reasons[str(reason)] = reasons.get(str(reason), 0) + 1
        if status == 201:
            placed.append((gw, order_id))
    accepted, limited = reasons.get("OK", 0), reasons.get("MESSAGE_RATE", 0)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    note = f"{count} new orders in {ms:.0f} ms: {summary}"
    within = ms < 1000
    held = limited > 0 and (accepted <= cap or not within)
    run.report.probes.append(
        Probe(
            "all",
            f"burst of {count}",
            f"{count} new orders at once",
            "MESSAGE_RATE",
            None,
            "MESSAGE_RATE" if limited else None,
            ms,
            held,
            note,
        )
    )


def _cancel_storm(
    run: _Run,
    gws: list[Gateway],
    price: str,
    node: Node,
    placed: list[tuple[Gateway, str]],
    max_orders: int,
    max_wait_s: float,
    sleep: Callable[[float], None],
) -> None:
    """Cancel requests until cancels outnumber new orders beyond the ratio; then a new order."""
    ratio = node.limits.cancel_to_new
    assert ratio is not None
    deadline = time.monotonic() + max_wait_s
    news = len(placed)
    needed = max(ratio.max_ratio_hundredths * news // 100 + 1, ratio.min_messages - news)
    if not placed or needed > max_orders:
        run.report.failures.append(
            f"CANCEL_RATIO: {needed} cancels needed on {node.scope} for {news} new orders; "
            f"the drill may send {max_orders} (--max) and placed {len(placed)} orders to cancel"
        )
        return
    sent = refused = 0
    i = 0
    while sent < needed and time.monotonic() < deadline:
        gw, order_id = placed[i % len(placed)]
        i += 1
        status, body, _ = gw.post(f"/v1/orders/{order_id}/cancel", {})
        if status == 200:
            sent += 1
        elif body.get("reason") == "MESSAGE_RATE":
            # Cancels share the message windows: wait for them to roll.
            refused += 1
            sleep(0.05)
        else:
            run.report.failures.append(
                f"CANCEL_RATIO: cancel of {order_id} answered {status} {body.get('reason')}"
            )
            return
    if sent < needed:
        run.report.failures.append(
            f"CANCEL_RATIO: only {sent} of {needed} cancels went through in {max_wait_s:.0f} s"
        )
        return
    # The next new order meets MESSAGE_RATE while the windows are full, then the ratio.
    gw = gws[0]
    started = time.monotonic()
    while True:
        probe = _probe(
            run,
            gw,
            0,
            f"new order after {sent} cancels to {news} new ({node.scope} max ratio "
            f"{Decimal(ratio.max_ratio_hundredths) / 100})",
            "CANCEL_RATIO",
            price,
        )
        if probe.reason != "MESSAGE_RATE" or time.monotonic() >= deadline:
            break
        sleep(0.1)
    run.report.probes.append(
        Probe(
            probe.gateway,
            probe.order_id,
            probe.case,
            probe.expected,
            probe.status,
            probe.reason,
            (time.monotonic() - started) * 1000,
            probe.held,
            f"{refused} cancels waited for the message windows; {probe.note}".rstrip("; "),
        )
    )
