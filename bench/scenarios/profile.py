"""Where a full ``reserve`` spends its Redis CPU.

Views, all on the all-controls firm:

- The commands the script issues, from ``INFO commandstats`` (Redis 7 counts
  the commands a script runs): µs per reserve by command, and the rest of the
  EVALSHA time, which is the Lua interpreter itself (msgpack, tables, strings).
- Script variants: the production ``reserve`` source with one part taken out
  (the audit record, the order record, the open-order index), each measured
  beside the production script with the same keys and arguments. A variant
  whose part cannot be found in the current source is reported as missing
  rather than measured wrong. The variants are measurement tools only: each
  leaves the ledger incomplete.
- A cost ladder: the production script returning early, right after its
  prelude, after reading the path, after evaluating the checks.
- The cost of one ``redis.call`` beyond its command's own work, from the
  five-level floor (its EVALSHA time less its commands' time less the
  ``return 1`` floor, per call), to split the total into entry, commands,
  call overhead and Lua.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from typing import Any

from bench.harness import ratio_of, server_cost, summarize
from bench.scenarios import Context, row
from bench.workload import FirmShape, capture_reserve, orders
from ledger.scripts import source

TITLE = "Profile of a full reserve"

FULL = FirmShape("FULL", controls="full")

# (name, what it removes, pattern, replacement): parts taken out of the production script.
_CUTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "no_audit",
        "audit record (msgpack + XADD)",
        r"(local function record\(d\)\n)",
        r"\1  do return d end\n",
    ),
    (
        "no_order_record",
        "order hash write (HSET of the order)",
        r"(rcall\('HSET', order_key, 'fp', fp, 'dec', cmsgpack\.pack\(d\), 'st', 'open',.*?\))"
        r"(\s*\nreturn record\(d\))",
        r"if false then \1 end\2",
    ),
    (
        "no_open_index",
        "open-order index (ZADD of five members)",
        r"(rcall\('ZADD', open_key, unpack\(members\)\))",
        r"if false then \1 end",
    ),
)
# (name, where it stops): the production script returning early, for a cost ladder.
_STOPS: tuple[tuple[str, str, str], ...] = (
    (
        "until_prelude",
        "the shared functions and tables defined, KEYS and ARGV read",
        r"(local fp, actor, maxlen = [^\n]*\n)",
    ),
    (
        "until_path",
        "idempotency, kills, policy records and node state read",
        r"(local path, rej, mu = load_path\([^\n]*\)\n)",
    ),
    (
        "until_checks",
        "and every check evaluated (no write yet)",
        r"(local d = decision\(out, amount\)\n)",
    ),
)


def variants() -> tuple[dict[str, str], dict[str, str]]:
    """Script text per variant, and the variants that could not be built."""
    base = source("reserve-7.lua")
    texts = {"production": base}
    missing = {}
    combined = base
    for name, what, pattern, repl in _CUTS:
        text, count = re.subn(pattern, repl, base, count=1, flags=re.DOTALL)
        if count == 0:
            missing[name] = f"{what}: not found in the current reserve source"
            continue
        texts[name] = text
        combined = re.sub(pattern, repl, combined, count=1, flags=re.DOTALL)
    if not missing:
        texts["checks_only"] = combined
    for name, what, pattern in _STOPS:
        text, count = re.subn(pattern, r"\1do return 0 end\n", base, count=1)
        if count == 0:
            missing[name] = f"{what}: not found in the current reserve source"
            continue
        texts[name] = text
    return texts, missing


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
    n = max(50, mode.calls // 2)  # eight script variants per repetition
    lg = ctx.ledger("prof", FULL)
    texts, missing = variants()
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
        for name, script in scripts.items():
            calls = [capture_reserve(lg, o) for o in orders(FULL, n + 1, f"{name}{rep}")]
            script(keys=calls[0][0], args=calls[0][1])  # loads it; not measured

            def work(script: Any = script, calls: list[Any] = calls[1:]) -> None:
                for keys, args in calls:
                    script(keys=keys, args=args)

            cost, parts = server_cost(ctx.client, work)
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
    labels = {
        "until_prelude": "returning at once (" + _STOPS[0][1] + ")",
        "until_path": "returning once the path is read (" + _STOPS[1][1] + ")",
        "until_checks": "returning once every check is evaluated, before any write",
        "no_audit": "without the audit record",
        "no_order_record": "without the order hash",
        "no_open_index": "without the open-order index",
        "checks_only": "without all three (checks and aggregates only)",
    }
    rows = [row("reserve (production script), Redis CPU", figures["production"])]
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
