"""Scenario: what durable acknowledgement costs a decision.

A private primary of the run's server binary (the shared server has no
replicas), then one and two replicas attached to it on loopback. Sequential
``reserve`` (all controls) per block, blocks rotated within each repetition:

- plain, no replica attached (the path without the setting);
- plain with the replicas attached (replication's own cost on the primary);
- ``durable_replicas=1`` and, with two attached, ``durable_replicas=2``:
  the script, ``PUBLISH`` and ``WAIT`` in one pipeline.

p50/p99 per block; each durable figure's ratio to the plain block measured
beside it.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from typing import Any

import redis

from bench.harness import at, percentiles, ratio_of, summarize, timed_calls
from bench.scenarios import Context, row
from bench.workload import FirmShape, orders, policy_doc
from ledger import Ledger, parse_policy
from ledger.store.embedded import EmbeddedRedis, find_server

TITLE = "Durable acknowledgement (WAIT for replicas)"

FULL = FirmShape("FULL", controls="full", traders=64, accounts=8)
#: Long enough never to fire on loopback: the figure is the confirmation, not a timeout.
TIMEOUT_MS = 5000


def _ledger(url: str, replicas: int) -> Ledger:
    lg = Ledger.from_url(
        url,
        prefix="dur",
        timeout_s=60.0,
        actor="bench",
        durable_replicas=replicas,
        durable_timeout_ms=TIMEOUT_MS,
    )
    lg.ping()
    return lg


def _attach(primary: EmbeddedRedis, tmp: str, n: int) -> EmbeddedRedis:
    replica = EmbeddedRedis(
        binary=primary.binary,
        datadir=tempfile.mkdtemp(prefix=f"r{n}-", dir=tmp),
        extra_args=["--replicaof", "127.0.0.1", str(primary.port)],
    ).start()
    client = redis.Redis(port=primary.port, socket_timeout=60)
    client.publish("bench", "")
    while client.execute_command("WAIT", n, 1000) < n:
        pass
    client.close()
    return replica


def run(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    n = mode.latency_calls
    pct: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory(prefix="bench-durable-") as tmp:
        primary = EmbeddedRedis(
            binary=find_server(),
            datadir=tempfile.mkdtemp(prefix="p-", dir=tmp),
            extra_args=["--repl-diskless-sync-delay", "0"],
        ).start()
        replicas: list[EmbeddedRedis] = []
        try:
            plain = _ledger(primary.url, 0)
            plain.load_policy(parse_policy(policy_doc([FULL]), source="bench:dur"), by="bench")
            stages = [
                ("0 replicas", {"plain, no replica": plain}),
                ("1 replica", {"plain, 1 replica": plain, "durable 1 of 1": None}),
                (
                    "2 replicas",
                    {"plain, 2 replicas": plain, "durable 1 of 2": None, "durable 2 of 2": None},
                ),
            ]
            for attached, (stage, blocks) in enumerate(stages):
                if attached:
                    replicas.append(_attach(primary, tmp, attached))
                ledgers = {
                    name: lg or _ledger(primary.url, int(name.split()[1]))
                    for name, lg in blocks.items()
                }
                for rep in range(mode.reps):
                    ctx.progress.say(f"{stage}, repetition {rep + 1}/{mode.reps}")
                    names = list(ledgers)
                    names = names[rep % len(names) :] + names[: rep % len(names)]
                    for name in names:
                        batch = list(orders(FULL, n, f"{name[:5]}{attached}r{rep}"))
                        samples, _ = timed_calls(at(ledgers[name].reserve, batch), n)
                        for q, v in percentiles(samples).items():
                            pct[name][q].append(v)
                for lg in ledgers.values():
                    if lg is not plain:
                        lg.redis.close()
            plain.redis.close()
        finally:
            for srv in [*replicas, primary]:
                srv.cleanup()
    out: dict[str, Any] = {"samples_per_block": n, "timeout_ms": TIMEOUT_MS}
    for name, figures in pct.items():
        out[name] = {q: summarize(v, "µs") for q, v in figures.items()}
    base = {
        "durable 1 of 1": "plain, 1 replica",
        "durable 1 of 2": "plain, 2 replicas",
        "durable 2 of 2": "plain, 2 replicas",
    }
    rows = [row("sequential reserve p50, plain, no replica", out["plain, no replica"]["p50"])]
    rows.append(row("sequential reserve p99, plain, no replica", out["plain, no replica"]["p99"]))
    for name, vs in base.items():
        for q in ("p50", "p99"):
            out[name][f"{q}_vs_plain"] = ratio_of(pct[name][q], pct[vs][q])
            rows.append(
                row(
                    f"sequential reserve {q}, {name}",
                    out[name][q],
                    vs=f"plain {q} with the same replicas attached",
                    ratio=out[name][f"{q}_vs_plain"],
                )
            )
    out["rows"] = rows
    return out
