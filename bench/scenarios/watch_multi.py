"""Scenario 4a: the ledger against redis-py WATCH/MULTI, 8 racing processes, same orders.

The alternative keeps the five gross totals as plain keys and reserves with
an optimistic transaction (see :func:`bench.workers.watch_reserve`): WATCH,
MGET, check, MULTI + five INCRBY + EXEC, retried on a conflict. The ledger
reserves the same orders with a policy holding the same five gross budgets.
The firm's budget is set to 60% of the notional sent, so both sides race for
the last of it; afterwards every budget is checked against what was reserved.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.harness import ratio_of, summarize
from bench.scenarios import Context, row
from bench.workers import race, watch_key
from bench.workload import ORDER_NOTIONAL_MINOR, FirmShape, orders

TITLE = "What users would write instead: WATCH/MULTI"

PROCS = 8


def _shape(total_orders: int) -> FirmShape:
    budget = (total_orders * ORDER_NOTIONAL_MINOR * 6 // 10) // 100 * 100
    return FirmShape(
        "RACE", controls="gross", traders=16, accounts=4, desks=2, firm_gross_minor=budget
    )


def _ledger_exceeded(ctx: Context, prefix: str) -> tuple[int, bool]:
    """Budgets the ledger let be exceeded, and whether its invariant check passed."""
    lg = ctx.ledger(prefix)
    rows = lg.utilization("global")
    over = sum(1 for r in rows if r.limit_name == "max_gross_notional" and r.used > r.limit)
    return over, lg.check().ok


def _watch_exceeded(client: Any, prefix: str, shape: FirmShape) -> int:
    limits = shape.gross_limits_minor()
    scopes = [("firm", shape.id)]
    firm_doc, strategies, traders = shape.document()
    scopes += [("desk", d["id"]) for d in firm_doc["desks"]]
    scopes += [("account", a["id"]) for d in firm_doc["desks"] for a in d["accounts"]]
    scopes += [("strategy", s["id"]) for s in strategies]
    scopes += [("trader", t["id"]) for t in traders]
    keys = [watch_key(prefix, shape.id, f"{level}:{node}") for level, node in scopes]
    used = client.mget(keys)
    return sum(1 for (level, _), u in zip(scopes, used, strict=True) if int(u or 0) > limits[level])


def run(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    total = PROCS * mode.race_orders
    shape = _shape(total)
    firm_doc, _, _ = shape.document()
    desks = {a["id"]: d["id"] for d in firm_doc["desks"] for a in d["accounts"]}
    rates: dict[str, list[float]] = defaultdict(list)
    stats: dict[str, dict[str, list[float]]] = {
        "ledger": defaultdict(list),
        "watch": defaultdict(list),
    }
    pool = ctx.pool
    for rep in range(mode.race_reps):
        prefix = f"race{rep}"
        ctx.ledger(prefix, shape)
        rows = [
            (
                o.order_id,
                o.trader,
                o.strategy,
                o.account,
                o.symbol,
                o.side,
                str(o.qty),
                str(o.price),
            )
            for o in orders(shape, total, f"r{rep}")
        ]
        kinds = ["ledger", "watch"] if rep % 2 == 0 else ["watch", "ledger"]
        for kind in kinds:
            ctx.progress.say(
                f"repetition {rep + 1}/{mode.race_reps}: {kind}, {PROCS} processes, {total} orders"
            )
            calls = [
                {
                    "kind": kind,
                    "url": ctx.url,
                    "prefix": prefix,
                    "order_rows": rows[w::PROCS],
                    "desks": desks,
                    "firm": shape.id,
                    "gross_limits": shape.gross_limits_minor(),
                }
                for w in range(PROCS)
            ]
            results = pool.run(race, calls)
            span = max(r["t1"] for r in results) - min(r["t0"] for r in results)
            rates[kind].append(total / span)
            s = stats[kind]
            s["accepted"].append(sum(r["accepted"] for r in results))
            s["retries"].append(sum(r["retries"] for r in results))
        over, check_ok = _ledger_exceeded(ctx, prefix)
        stats["ledger"]["exceeded"].append(over)
        stats["ledger"]["check_failed"].append(0 if check_ok else 1)
        stats["watch"]["exceeded"].append(_watch_exceeded(ctx.client, prefix, shape))
    fit = shape.firm_gross_minor // ORDER_NOTIONAL_MINOR
    out: dict[str, Any] = {
        "processes": PROCS,
        "orders_per_repetition": total,
        "orders_that_fit_the_firm_budget": fit,
        "ledger_per_s": summarize(rates["ledger"], "1/s"),
        "watch_per_s": summarize(rates["watch"], "1/s"),
        "ledger_vs_watch": ratio_of(rates["ledger"], rates["watch"]),
    }
    for kind in ("ledger", "watch"):
        for name, vals in stats[kind].items():
            out[f"{kind}_{name}"] = summarize(vals, "count")
    out["rows"] = [
        row(
            f"ledger reserve, {PROCS} racing processes, decisions/s",
            out["ledger_per_s"],
            vs="WATCH/MULTI, same orders",
            ratio=out["ledger_vs_watch"],
            note=f"budgets exceeded: {int(max(stats['ledger']['exceeded']))}; accepted "
            f"{int(max(stats['ledger']['accepted']))} of {total} ({fit} fit)",
        ),
        row(
            f"WATCH/MULTI, {PROCS} racing processes, decisions/s",
            out["watch_per_s"],
            note=f"retries per repetition: median {out['watch_retries']['median']:.0f}; budgets "
            f"exceeded: {int(max(stats['watch']['exceeded']))}; accepted "
            f"{int(max(stats['watch']['accepted']))}",
        ),
        row(
            "WATCH/MULTI retries per order",
            summarize([r / total for r in stats["watch"]["retries"]], "count"),
        ),
    ]
    return out
