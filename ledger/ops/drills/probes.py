"""The drill account, its probe orders and the gateways they go through: shared by every drill."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack

from ledger.errors import InvalidInput
from ledger.facade.client import Ledger
from ledger.facade.inputs import text
from ledger.policy.model import Node, Policy

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
