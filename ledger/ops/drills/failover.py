"""The failover drill: probes through a Sentinel failover; who saw it down, and what was lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from ledger.errors import InvalidInput, LedgerUnavailable
from ledger.facade.client import Ledger
from ledger.facade.order import Order
from ledger.facade.results import ReleaseResult
from ledger.ops.drills.probes import DrillReport, Gateway, Probe, _reference, _Run, _start
from ledger.reasons import Reason
from ledger.store.sentinel import is_sentinel_url, sentinel_clients
from ledger.store.sentinel import parse as parse_sentinel_url


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
