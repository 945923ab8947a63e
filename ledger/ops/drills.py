"""Drills: prove against a live deployment that the controls hold.

Each drill sends probe orders through the listed gateways (HTTP, an
``order-entry`` token) on a drill account: one marked ``drill: true`` in the
policy, itself or through its firm, so that no real budget is touched.

* ``kill``: kills a drill scope, sends a probe through every gateway at once
  and measures how long after the kill's acknowledgement each refused it
  (``KILL_SWITCH``), then lifts the kill.
* ``storm``: sends a bounded burst of new orders and proves ``MESSAGE_RATE``
  stops it; where the path has ``cancel_to_new``, cancels until the ratio is
  crossed and proves ``CANCEL_RATIO`` refuses the next order. Needs a drill
  firm: a burst counts against every node of its path. Releases every order
  it placed.
* ``entitlement``: probes that break an entitlement (a trader or strategy not
  entitled to the account, a symbol or venue the account may not trade) are
  refused with ``NOT_ENTITLED``.
* ``collar``: a probe priced beyond the symbol's collar is refused with
  ``PRICE_COLLAR``.
* ``failover`` (Sentinel): probes through the library and the gateways while a
  sentinel is asked for ``SENTINEL FAILOVER``; measures each prober's
  unavailability window and counts acknowledged probes the new primary does
  not know (lost). Needs a drill firm, as the storm.

A probe that is accepted when it should not be is released at once and the
drill fails. Each drill writes an audit record (``op = "drill"``: who, which
drill, run id, outcome) to the drill firm's audit stream when it starts and
when it ends; the kill and unkill are audited as any other.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import msgpack
import redis

from ledger.errors import InvalidInput, LedgerUnavailable
from ledger.facade.client import Ledger
from ledger.facade.inputs import text
from ledger.facade.order import Order
from ledger.facade.results import ReleaseResult
from ledger.policy.model import Node, Policy
from ledger.reasons import Reason
from ledger.store.sentinel import is_sentinel_url, sentinel_clients
from ledger.store.sentinel import parse as parse_sentinel_url

__all__ = [
    "DRILLS",
    "MAX_BURST",
    "Target",
    "Gateway",
    "Probe",
    "DrillReport",
    "target",
    "kill_drill",
    "storm_drill",
    "entitlement_drill",
    "collar_drill",
    "failover_drill",
    "failover_verdicts",
    "Answer",
    "ProberVerdict",
]

#: The drills that probe through gateways alone (the failover drill also needs the sentinels).
DRILLS = ("kill", "storm", "entitlement", "collar")
#: The largest burst a storm drill sends, whatever is asked.
MAX_BURST = 10_000
_NO_POLICY = "no policy is loaded; load one with: ledger policy load FILE --by NAME"


@dataclass(frozen=True)
class Target:
    """The drill account and a path that reaches it."""

    firm: str
    desk: str
    account: str
    strategy: str
    trader: str
    symbol: str
    venue: str | None
    #: True when the whole firm is set aside for drills.
    drill_firm: bool


@dataclass(frozen=True)
class Probe:
    """One probe order and what a gateway answered."""

    gateway: str
    order_id: str
    #: What the probe breaks, e.g. ``trader T-X not entitled``.
    case: str
    expected: str
    #: HTTP status; None when the gateway could not be reached.
    status: int | None
    reason: str | None
    #: Milliseconds from the control being set (kill drill) or the probe being sent.
    ms: float
    held: bool
    note: str = ""


@dataclass
class DrillReport:
    drill: str
    run_id: str
    by: str
    target: Target
    scope: str
    probes: list[Probe] = field(default_factory=list)
    #: Controls that could not be shown to hold, in words.
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Figures of a drill beyond its probes (failover: primaries, window, loss).
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return bool(self.probes) and not self.failures and all(p.held for p in self.probes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drill": self.drill,
            "run_id": self.run_id,
            "by": self.by,
            "outcome": "held" if self.held else "failed",
            "scope": self.scope,
            "target": asdict(self.target),
            "probes": [asdict(p) for p in self.probes],
            "failures": self.failures,
            "notes": self.notes,
            **({"metrics": self.metrics} if self.metrics else {}),
        }


class Gateway:
    """A gateway's order routes over HTTP with one token."""

    def __init__(self, url: str, token: str, timeout_s: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput("gateway", f"must be an http:// or https:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def post(self, path: str, body: dict[str, Any]) -> tuple[int | None, dict[str, Any], str]:
        """``(status, body, error)``; status None with the error when the gateway did not answer."""
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, _json(resp.read()), ""
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read()), ""
        except (OSError, ValueError) as exc:
            return None, {}, f"{type(exc).__name__}: {exc}"


def _json(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


# -- the drill account ------------------------------------------------------------------


def _policy(lg: Ledger) -> Policy:
    policy = lg.policy(refresh=True)
    if policy is None:
        raise InvalidInput("policy", _NO_POLICY)
    return policy


def target(policy: Policy, account: str | None = None) -> Target:
    """The drill account (``account`` or the first one), an enabled strategy and a trader."""
    drills = sorted(n.id for n in policy.nodes.values() if n.kind == "account" and n.drill)
    if account is None:
        if not drills:
            raise InvalidInput(
                "account",
                "the policy has no drill account: set drill: true on a firm or an account",
            )
        account = drills[0]
    node = policy.node(f"account:{account}")
    if node is None:
        raise InvalidInput("account", f"no account {account!r} in the loaded policy")
    if not node.drill:
        raise InvalidInput(
            "account",
            f"{account} is not a drill account: set drill: true on it or its firm in the policy",
        )
    desk = policy.node(str(node.parent))
    assert desk is not None
    strategies = sorted(
        n.id
        for n in policy.nodes.values()
        if n.kind == "strategy" and account in n.accounts and n.state == "enabled"
    )
    for strategy in strategies:
        traders = sorted(
            n.id
            for n in policy.nodes.values()
            if n.kind == "trader" and account in n.accounts and strategy in n.strategies
        )
        if traders:
            break
    else:
        raise InvalidInput(
            "account",
            f"drill account {account} needs an enabled strategy and a trader entitled to both",
        )
    tiered = sorted(s for t in policy.controls.tiers.values() for s in t.symbols)
    if node.symbols is not None:
        allowed = sorted(node.symbols)
        symbols = [s for s in allowed if s in tiered] if tiered else allowed
    else:
        symbols = tiered or ["DRILL"]
    if not symbols:
        raise InvalidInput("account", f"drill account {account} may trade no symbol in a tier")
    firm = policy.node(f"firm:{node.firm}")
    return Target(
        node.firm,
        desk.id,
        account,
        strategy,
        traders[0],
        symbols[0],
        sorted(node.venues)[0] if node.venues else None,
        bool(firm and firm.drill),
    )


def _path(policy: Policy, t: Target) -> list[Node]:
    scopes = (
        f"firm:{t.firm}",
        f"desk:{t.desk}",
        f"account:{t.account}",
        f"strategy:{t.strategy}",
        f"trader:{t.trader}",
    )
    return [n for n in (policy.node(s) for s in scopes) if n is not None]


def _reference(lg: Ledger, t: Target) -> tuple[str | None, bool]:
    """The symbol's reference price in the drill firm and whether it is fresh."""
    for row in lg.prices.get([t.symbol]):
        if row.firm == t.firm:
            return row.price, row.stale is not True and row.halt is None
    return None, False


# -- running probes -------------------------------------------------------------------


class _Run:
    """One drill run: ids, the audit records, probes and their clean-up."""

    def __init__(self, lg: Ledger, drill: str, by: str, t: Target, scope: str) -> None:
        self.lg = lg
        self.report = DrillReport(drill, secrets.token_hex(4), text("by", by, 200), t, scope)
        self._seq = 0
        self._lock = threading.Lock()

    def order_id(self, gateway_ix: int) -> str:
        with self._lock:
            self._seq += 1
            return f"drill-{self.report.drill}-{self.report.run_id}-g{gateway_ix}-{self._seq}"

    def order(self, order_id: str, price: str, **changes: Any) -> dict[str, Any]:
        t = self.report.target
        body: dict[str, Any] = {
            "order_id": order_id,
            "trader": t.trader,
            "strategy": t.strategy,
            "account": t.account,
            "symbol": t.symbol,
            "side": "buy",
            "qty": "1",
            "price": price,
        }
        if t.venue is not None:
            body["venue"] = t.venue
        body.update(changes)
        return {k: v for k, v in body.items() if v is not None}

    def release(self, gw: Gateway, order_id: str) -> str:
        status, body, error = gw.post(
            f"/v1/orders/{order_id}/release", {"reason": f"drill {self.report.run_id}"}
        )
        if status == 200:
            return "released"
        return f"release failed: {error or status} {body.get('reason', '')}".strip()

    def audit(self, outcome: str, **extra: Any) -> None:
        r = self.report
        seconds, micros = self.lg.redis.time()
        record = {
            "op": "drill",
            "drill": r.drill,
            "run": r.run_id,
            "by": r.by,
            "why": f"drill {r.drill} {r.run_id}",
            "scope": r.scope,
            "account": r.target.account,
            "outcome": outcome,
            "t": int(seconds) * 1000 + int(micros) // 1000,
            **extra,
        }
        with self.lg._redis_errors():
            self.lg.redis.xadd(
                self.lg.keys.audit(r.target.firm),
                {"m": msgpack.packb(record, use_bin_type=True)},
                maxlen=self.lg.audit_maxlen,
                approximate=True,
            )

    def finish(self) -> DrillReport:
        r = self.report
        self.audit(
            "held" if r.held else "failed",
            probes=[[p.gateway, p.case, p.reason or "", round(p.ms, 1)] for p in r.probes],
            failures=r.failures,
        )
        return r


def _probe(
    run: _Run,
    gw: Gateway,
    ix: int,
    case: str,
    expected: str,
    price: str,
    since: float | None = None,
    **changes: Any,
) -> Probe:
    """Send one probe; release it if it was accepted (the control did not hold)."""
    order_id = run.order_id(ix)
    started = time.monotonic()
    status, body, error = gw.post("/v1/orders", run.order(order_id, price, **changes))
    ms = (time.monotonic() - (since if since is not None else started)) * 1000
    reason = body.get("reason") if status is not None else None
    note = error
    if status == 201:
        note = "accepted: " + run.release(gw, order_id)
    return Probe(gw.url, order_id, case, expected, status, reason, ms, reason == expected, note)


def _start(lg: Ledger, drill: str, by: str, account: str | None) -> tuple[_Run, Policy]:
    policy = _policy(lg)
    t = target(policy, account)
    run = _Run(lg, drill, by, t, f"account:{t.account}")
    return run, policy


def _gateways(gateways: Iterable[Gateway]) -> list[Gateway]:
    out = list(gateways)
    if not out:
        raise InvalidInput("gateway", "name at least one gateway (--gateway URL)")
    return out


# -- the drills -------------------------------------------------------------------------


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
            for window in ("per_second", "per_10s"):
                cap = getattr(limits, window) if limits else None
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


# -- failover ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One failover probe: who sent it, when (monotonic seconds) and what came back."""

    prober: str
    order_id: str
    sent: float
    answered: float
    #: ``accepted``, ``unavailable`` (fail closed, no answer) or the reason of a refusal.
    outcome: str


@dataclass(frozen=True)
class ProberVerdict:
    """What one prober saw around the failover."""

    prober: str
    sent: int
    acknowledged: int
    unavailable: int
    lost: int
    #: First unavailable probe sent to the first acceptance after it, in ms; 0.0
    #: when no probe found the ledger unavailable; None when none was accepted after.
    window_ms: float | None


def failover_verdicts(
    answers: Iterable[Answer], since: float, lost: Iterable[str]
) -> list[ProberVerdict]:
    """Per prober, from its answers: the unavailability window after ``since`` and the loss.

    ``lost`` are the order ids of acknowledged probes that the ledger no longer
    knows after the failover.
    """
    gone = set(lost)
    by_prober: dict[str, list[Answer]] = {}
    for a in answers:
        by_prober.setdefault(a.prober, []).append(a)
    out = []
    for prober, mine in by_prober.items():
        mine.sort(key=lambda a: a.sent)
        down = next((a for a in mine if a.sent >= since and a.outcome == "unavailable"), None)
        window: float | None = 0.0
        if down is not None:
            back = next((a for a in mine if a.sent > down.sent and a.outcome == "accepted"), None)
            window = None if back is None else (back.answered - down.sent) * 1000
        acked = [a for a in mine if a.outcome == "accepted"]
        out.append(
            ProberVerdict(
                prober,
                len(mine),
                len(acked),
                sum(1 for a in mine if a.outcome == "unavailable"),
                sum(1 for a in acked if a.order_id in gone),
                window,
            )
        )
    return out


def _primary(clients: list[Any], service: str) -> str | None:
    """``host:port`` of the primary as a majority of the sentinels see it; None without one."""
    seen: list[str] = []
    for c in clients:
        try:
            host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
        except (redis.RedisError, TypeError, ValueError):
            continue
        seen.append(f"{host}:{port}")
    best = max(set(seen), key=seen.count) if seen else None
    return best if best is not None and seen.count(best) > len(clients) // 2 else None


def _demoted(clients: list[Any], service: str, address: str, primary: str) -> bool:
    """A majority of the sentinels see ``address`` (the old primary) replicate ``primary``.

    As its own INFO reports it: a replica's link status and primary, which a
    sentinel learns only from the server (its role alone is assumed when the
    entry is made).

    Until then it may still take writes from connections opened before the
    failover, writes the new primary never sees: probes accepted then are the
    loss this drill is there to find, so it does not stop before.
    """
    seen = 0
    for c in clients:
        try:
            entries = c.execute_command("SENTINEL", "REPLICAS", service)
        except redis.RedisError:
            continue
        for entry in entries:
            f = (
                entry
                if isinstance(entry, dict)
                else dict(zip(entry[::2], entry[1::2], strict=True))
            )
            if f"{f.get('ip')}:{f.get('port')}" == address:
                seen += (
                    f.get("role-reported") == "slave"
                    and f.get("master-link-status") == "ok"
                    and f"{f.get('master-host')}:{f.get('master-port')}" == primary
                )
    return seen > len(clients) // 2


def _trigger(clients: list[Any], service: str) -> str | None:
    """``SENTINEL FAILOVER`` on the first sentinel that takes it; None, or why none did."""
    errors = []
    for c in clients:
        try:
            c.execute_command("SENTINEL", "FAILOVER", service)
            return None
        except redis.RedisError as exc:
            errors.append(f"{c.connection_pool.connection_kwargs.get('port')}: {exc}")
    return "; ".join(errors)


def _until(done: Callable[[], bool], deadline: float, sleep: Callable[[float], None]) -> bool:
    while not done():
        if time.monotonic() >= deadline:
            return False
        sleep(0.05)
    return True


def failover_drill(
    lg: Ledger,
    sentinel_url: str,
    gateways: Iterable[Gateway] = (),
    *,
    by: str,
    account: str | None = None,
    max_window_s: float = 30.0,
    timeout_s: float = 60.0,
    interval_s: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> DrillReport:
    """``SENTINEL FAILOVER`` under probe load: the unavailability window and the loss.

    Probes (qty 1 buys on the drill account, which must be in a drill firm)
    go every ``interval_s`` through ``lg`` (the library, connected through
    ``sentinel_url``) and through each gateway. Once every prober has been
    accepted, the drill asks a sentinel for a failover, waits for a majority
    of the sentinels to name another primary and every prober to be accepted
    again (at most ``timeout_s``), then releases every probe: an acknowledged
    probe the ledger no longer knows is lost. Held when nothing acknowledged
    was lost and every prober's window is within ``max_window_s``.
    """
    if not is_sentinel_url(sentinel_url):
        raise InvalidInput(
            "redis_url",
            "the failover drill needs the ledger's redis+sentinel:// URL (--redis-url): it "
            "asks the sentinels for the failover",
        )
    for name, value in (("max_window", max_window_s), ("timeout", timeout_s)):
        if not 0 < value <= 3600:
            raise InvalidInput(name, "must be more than 0 and at most 3600 seconds")
    if not 0.01 <= interval_s <= 10:
        raise InvalidInput("interval", "must be from 0.01 to 10 seconds")
    gws = list(gateways)
    service = parse_sentinel_url(sentinel_url).service
    sentinels = sentinel_clients(sentinel_url, timeout_s=2.0)
    try:
        run, _ = _start(lg, "failover", by, account)
        t = run.report.target
        if not t.drill_firm:
            raise InvalidInput(
                "account",
                f"a failover drill needs an account of a drill firm: its accepted probes count "
                f"against every node of its path until released, and firm:{t.firm} is not a "
                "drill firm",
            )
        before = _primary(sentinels, service)
        if before is None:
            raise LedgerUnavailable(f"the sentinels name no primary of {service} by a majority")
        price, _ = _reference(lg, t)
        run.audit("started", primary=before)
        answers = _probe_through_failover(
            run, lg, gws, price or "1", sentinels, service, before, timeout_s, interval_s, sleep
        )
    finally:
        for c in sentinels:
            c.close()
    return _failover_report(run, lg, answers, max_window_s)


def _probe_through_failover(
    run: _Run,
    lg: Ledger,
    gws: list[Gateway],
    price: str,
    sentinels: list[Any],
    service: str,
    before: str,
    timeout_s: float,
    interval_s: float,
    sleep: Callable[[float], None],
) -> list[Answer]:
    t = run.report.target
    answers: list[Answer] = []
    lock = threading.Lock()
    stop = threading.Event()

    def library(order_id: str) -> str:
        order = Order(
            order_id, t.trader, t.strategy, t.account, t.symbol, "buy", "1", price, t.venue
        )
        try:
            d = lg.reserve(order, firm=t.firm)
        except LedgerUnavailable:
            return "unavailable"
        return "accepted" if d.accepted else d.reason.value

    def through(gw: Gateway) -> Callable[[str], str]:
        def send(order_id: str) -> str:
            status, body, _ = gw.post("/v1/orders", run.order(order_id, price))
            if status == 201:
                return "accepted"
            if status is None or status == 503:
                return "unavailable"
            return str(body.get("reason") or status)

        return send

    probers: list[tuple[str, int, Callable[[str], str]]] = [("library", 0, library)]
    probers += [(gw.url, i + 1, through(gw)) for i, gw in enumerate(gws)]

    def loop(name: str, ix: int, send: Callable[[str], str]) -> None:
        while not stop.is_set():
            order_id = run.order_id(ix)
            sent = time.monotonic()
            outcome = send(order_id)
            with lock:
                answers.append(Answer(name, order_id, sent, time.monotonic(), outcome))
            stop.wait(interval_s)

    def accepted_after(since: float) -> bool:
        with lock:
            ok = {a.prober for a in answers if a.outcome == "accepted" and a.sent >= since}
        return all(name in ok for name, _, _ in probers)

    threads = [threading.Thread(target=loop, args=p, daemon=True) for p in probers]
    for th in threads:
        th.start()
    r = run.report
    try:
        if not _until(lambda: accepted_after(0.0), time.monotonic() + timeout_s, sleep):
            r.failures.append(
                f"not every prober was accepted within {timeout_s:g} s before the failover; "
                "no failover was asked"
            )
            return answers
        issued = time.monotonic()
        refused = _trigger(sentinels, service)
        if refused is not None:
            r.failures.append(f"every sentinel refused SENTINEL FAILOVER {service}: {refused}")
            return answers
        deadline = issued + timeout_s
        after: list[str] = []

        def switched() -> bool:
            now = _primary(sentinels, service)
            if now is not None and now != before:
                after.append(now)
                return True
            return False

        if not _until(switched, deadline, sleep):
            r.failures.append(f"the sentinels named no new primary within {timeout_s:g} s")
            return answers
        r.metrics.update(
            {
                "primary_before": before,
                "primary_after": after[0],
                "switch_ms": round((time.monotonic() - issued) * 1000, 1),
                "failover_issued": issued,
            }
        )
        r.notes.append(f"primary {before} -> {after[0]}")
        if not _until(lambda: _demoted(sentinels, service, before, after[0]), deadline, sleep):
            r.failures.append(
                f"the old primary {before} did not report itself a replica within "
                f"{timeout_s:g} s; loss cannot be judged"
            )
            return answers
        seen = time.monotonic()
        if not _until(lambda: accepted_after(seen), deadline, sleep):
            r.failures.append(
                f"not every prober was accepted again within {timeout_s:g} s of the failover"
            )
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=30)
    return answers


def _release(lg: Ledger, order_id: str, reason: str, firm: str) -> ReleaseResult | None:
    """Release a probe; a few tries, as a connection to the demoted primary is dropped first."""
    for attempt in range(20):
        try:
            return lg.release(order_id, reason, firm=firm)
        except LedgerUnavailable:
            time.sleep(0.1 * min(attempt + 1, 5))
    return None


def _failover_report(
    run: _Run, lg: Ledger, answers: list[Answer], max_window_s: float
) -> DrillReport:
    r = run.report
    issued = r.metrics.pop("failover_issued", None)
    lost: list[str] = []
    unreleased = 0
    reason = f"drill {r.run_id}"
    for a in answers:
        # Unavailable probes too: the ledger may have taken one it could not answer.
        if a.outcome not in ("accepted", "unavailable"):
            continue
        res = _release(lg, a.order_id, reason, r.target.firm)
        if res is None:
            unreleased += 1
            continue
        if a.outcome == "accepted" and res.reason is Reason.UNKNOWN_ORDER:
            lost.append(a.order_id)
    if unreleased:
        r.failures.append(f"could not release {unreleased} probes: the ledger is unavailable")
    verdicts = failover_verdicts(answers, issued if issued is not None else float("inf"), lost)
    for v in verdicts:
        held = issued is not None and v.lost == 0 and v.window_ms is not None
        held = held and v.window_ms is not None and v.window_ms <= max_window_s * 1000
        r.probes.append(
            Probe(
                v.prober,
                f"{v.sent} probes",
                "orders through SENTINEL FAILOVER",
                f"no loss, window <= {max_window_s:g} s",
                None,
                f"{v.lost} lost" if v.lost else "none lost",
                v.window_ms if v.window_ms is not None else -1.0,
                held,
                f"sent {v.sent}, acknowledged {v.acknowledged}, unavailable {v.unavailable}, "
                f"lost {v.lost}" + ("" if v.window_ms is not None else "; never accepted again"),
            )
        )
    windows = [v.window_ms for v in verdicts if v.window_ms is not None]
    r.metrics.update(
        {
            "window_ms": round(max(windows), 1) if windows else None,
            "max_window_ms": round(max_window_s * 1000, 1),
            "sent": sum(v.sent for v in verdicts),
            "acknowledged": sum(v.acknowledged for v in verdicts),
            "lost": len(lost),
            "lost_ids": lost[:20],
        }
    )
    r.notes.append(
        "ms = from the first probe that found the ledger unavailable after the failover was "
        "asked to the first acceptance after it (0: none found it unavailable); every probe "
        "released"
    )
    return run.finish()
