"""Where a reserve with every control on spends its Redis CPU.

Views, all on a firm with every control of the order path on (``all`` in
bench/workload.py: tiers, reference price, entitlements, duplicate guard,
stress factor and override in force, and the rest):

- The commands the script issues, from ``INFO commandstats`` (Redis 7 counts
  the commands a script runs): µs per reserve by command, and the rest of the
  EVALSHA time, which is the Lua interpreter itself (msgpack, tables, strings).
- Script variants (bench/reserve_variants.py): the production ``reserve``
  source with one write of the commit taken out (the audit record, the order
  hash, the open-order index, the positions, the duplicate-guard key, then
  all of them), each measured beside the production script with the same
  keys and arguments. A variant whose part cannot be found in the current
  source, or that does not answer as it should, is reported as missing
  rather than measured wrong.
- A cost ladder: the production script returning early at points of a
  single order's path, from right after its prelude to the order decided and
  applied in memory.
- The cost of one ``redis.call`` beyond its command's own work, from the
  five-level floor (its EVALSHA time less its commands' time less the
  ``return 1`` floor, per call), to split the total into entry, commands,
  call overhead and Lua.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import redis

from bench.harness import ratio_of, server_cost, summarize
from bench.reserve_variants import COMBINED, CUTS, STOPS, variants
from bench.scenarios import Context, row
from bench.workload import FirmShape, arm_controls, capture_reserve, orders, refresh_prices
from ledger import Reason

TITLE = "Profile of a reserve with all controls on"

ALL = FirmShape("ALL", controls="all")
_STOP_NAMES = frozenset(v.name for v in STOPS)


def _answers_right(name: str, raw: Any) -> bool:
    """A stop returns 0; every other variant must accept, as production does."""
    if name in _STOP_NAMES:
        return bool(raw == 0)
    code = raw[0] if isinstance(raw, list) and raw else None
    return isinstance(code, bytes) and code.decode() == Reason.OK.value


def call_overhead(ctx: Context, n: int) -> tuple[float, float]:
    """µs a script pays per redis.call beyond the command's own work, from the floors.

    (five-level floor - its commands' own time - EVALSHA of return 1) / its calls.
    Also returns the EVALSHA floor itself.
    """
    floors = ctx.floors
    one = floors.server_us("one", n)
    five, parts = server_cost(ctx.client, lambda: [floors.five(i) for i in range(n)])
    calls = sum(c for c, _ in parts.values())
    own = sum(u for _, u in parts.values())
    return (five - own - one) / calls, one


def run(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    n = max(50, mode.calls // 3)  # twelve script variants per repetition
    lg = ctx.ledger("prof", ALL)
    arm_controls(lg, ALL)
    texts, missing = variants()
    if "production" not in texts:
        raise RuntimeError(missing["production"])
    scripts = {name: ctx.client.register_script(text) for name, text in texts.items()}
    series: dict[str, list[float]] = defaultdict(list)
    inner: dict[str, list[float]] = defaultdict(list)
    inner_calls: dict[str, list[float]] = defaultdict(list)
    per_call: list[float] = []
    entry: list[float] = []
    for rep in range(mode.reps):
        ctx.progress.say(f"repetition {rep + 1}/{mode.reps}")
        overhead, one = call_overhead(ctx, n)
        per_call.append(overhead)
        entry.append(one)
        for v, (name, script) in enumerate(scripts.items()):
            if name in missing:
                continue
            # Distinct orders for every variant and repetition: the duplicate guard is on.
            start = (rep * len(scripts) + v) * (n + 1)
            calls = [capture_reserve(lg, o) for o in orders(ALL, n + 1, name, start=start)]
            refresh_prices(lg)
            try:
                first = script(keys=calls[0][0], args=calls[0][1])  # loads it; not measured
            except redis.ResponseError as exc:
                missing[name] = f"does not run: {exc}"
                continue
            answers: list[Any] = [first]

            def work(
                script: Any = script, calls: list[Any] = calls[1:], out: list[Any] = answers
            ) -> None:
                for keys, args in calls:
                    out.append(script(keys=keys, args=args))

            cost, parts = server_cost(ctx.client, work)
            wrong = [a for a in answers if not _answers_right(name, a)]
            if wrong and name == "production":
                raise RuntimeError(
                    f"production reserve: {len(wrong)} of {n + 1} not accepted: {wrong[0]!r}"
                )
            if wrong:
                missing[name] = f"answered {wrong[0]!r} ({len(wrong)} of {n + 1} calls)"
                series.pop(name, None)
                continue
            series[name].append(cost)
            if name == "production":
                for cmd, (c, usec) in parts.items():
                    inner[cmd].append(usec)
                    inner_calls[cmd].append(c)
    production = series["production"]
    figures = {name: summarize(vals, "µs") for name, vals in series.items()}
    shares = {
        name: ratio_of(vals, production) for name, vals in series.items() if name != "production"
    }
    inner_us = {cmd: summarize(vals, "µs") for cmd, vals in sorted(inner.items())}
    calls_per_reserve = {cmd: statistics.median(v) for cmd, v in sorted(inner_calls.items())}
    n_calls = sum(calls_per_reserve.values())
    own = sum(v["median"] for v in inner_us.values())
    overhead_us = statistics.median(per_call) * n_calls
    entry_us = statistics.median(entry)
    lua_us = figures["production"]["median"] - own - overhead_us - entry_us
    split = {
        "evalsha_entry_us": entry_us,
        "commands_own_us": own,
        "redis_calls_per_reserve": n_calls,
        "redis_call_overhead_us_each": statistics.median(per_call),
        "redis_call_overhead_us": overhead_us,
        "lua_compute_us": lua_us,
    }
    labels = {v.name: f"returning once {v.what}" for v in STOPS}
    labels |= {v.name: f"without the {v.what}" for v in CUTS}
    labels[COMBINED] = "without any of those writes (checks and node states only)"
    for name, why in missing.items():
        ctx.progress.say(f"variant {name} left out: {why}")
    left_out = f"variants left out: {', '.join(missing)} (see missing_variants)" if missing else ""
    rows = [row("reserve (production script), Redis CPU", figures["production"], note=left_out)]
    for name, label in labels.items():
        if name in figures:
            rows.append(
                row(f"reserve {label}", figures[name], vs="production reserve", ratio=shares[name])
            )
    rows += [
        row("split: EVALSHA entry (the `return 1` floor)", summarize([entry_us], "µs")),
        row(
            f"split: the commands' own work ({n_calls:g} redis.call per reserve)",
            summarize([own], "µs"),
            note=", ".join(f"{c} {v['median']:.1f}" for c, v in inner_us.items()),
        ),
        row(
            "split: redis.call overhead (per call, from the floor, times the calls)",
            summarize([overhead_us], "µs"),
            note=f"{split['redis_call_overhead_us_each']:.2f} µs per call",
        ),
        row("split: Lua compute (msgpack, tables, strings, checks)", summarize([lua_us], "µs")),
    ]
    return {
        "figures": figures,
        "ratios_to_production": shares,
        "inner_commands_us": inner_us,
        "inner_calls_per_reserve": calls_per_reserve,
        "split": split,
        "missing_variants": missing,
        "rows": rows,
    }
