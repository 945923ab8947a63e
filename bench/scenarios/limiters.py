"""Scenario 4b: the ledger's message window against the ``limits`` library.

Cost per hit, at a limit of 1,000 messages per second per node:

- ``limits`` moving window and sliding-window counter: Redis CPU per hit
  (their EVALSHA) and the round trip from Python, over 16 nodes hit in turn
  (each stays under its limit, so every hit is counted).
- the ledger: its window is checked inside ``reserve`` and adds no round
  trip, so its cost per hit is the difference between ``reserve`` on a firm
  whose traders have a 1,000/s window and ``reserve`` on the same firm
  without one, measured side by side.

Memory per node, after a node took ``L`` messages within one second, for
``L`` = 10 ... 10,000 with a limit of ``L``/s: MEMORY USAGE of the keys
``limits`` keeps for the node; for the ledger, how much larger the firm's
aggregate hash is than that of the same firm, sent the same orders, without
the window (the window lives in the node's state field). ``limits`` is fed
with one hit of cost ``L`` (the same entries as ``L`` hits of cost 1).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from bench.harness import ratio_of, server_cost, summarize, timed_calls
from bench.scenarios import Context, row
from bench.workload import FirmShape, fill_pipelined, orders, policy_doc
from ledger import parse_policy

TITLE = "What users would write instead: the limits library"

NODES = 16
LIMIT = 1_000
WINDOWED = FirmShape("WIN", window_only=True, window_per_second=LIMIT, traders=NODES)
PLAIN = FirmShape("NOWIN", window_only=True, window_per_second=0, traders=NODES)
MEMORY_LIMITS = (10, 100, 1_000, 10_000)
BLOCKS = 10


def limiter_bytes(client: Any, name: str, lim: Any, item: Any, identifier: str) -> int:
    """Bytes of the keys one ``limits`` limiter keeps for ``identifier``, read at once.

    The key names follow ``limits``' Redis storage: the moving window is one list at
    ``prefix:<item key>``, the sliding-window counter two counters at ``prefix:{<item key>}``
    and ``prefix:{<item key>}/-1``. They expire within seconds, so they are named rather
    than searched for.
    """
    storage = lim.storage
    key = item.key_for(identifier)
    if name == "moving_window":
        names = [storage.prefixed_key(key)]
    else:
        names = [
            storage.prefixed_key(storage._current_window_key(key)),
            storage.prefixed_key(storage._previous_window_key(key)),
        ]
    return sum(int(client.memory_usage(k, samples=0) or 0) for k in names)


def limiters_for(url: str) -> dict[str, Any]:
    storage = RedisStorage(url, key_prefix="bench-limits")
    return {
        "moving_window": MovingWindowRateLimiter(storage),
        "sliding_window": SlidingWindowCounterRateLimiter(storage),
    }


def cost(ctx: Context) -> dict[str, Any]:
    mode = ctx.mode
    n = mode.limiter_hits
    lg = ctx.ledger("lim", WINDOWED, PLAIN)
    limiters = limiters_for(ctx.url)
    item = RateLimitItemPerSecond(LIMIT)
    server: dict[str, list[float]] = defaultdict(list)
    client: dict[str, list[float]] = defaultdict(list)
    refused: dict[str, int] = defaultdict(int)
    for lim in limiters.values():  # the first call loads the script
        lim.hit(item, "warm")
    window_server: list[float] = []
    for rep in range(mode.reps):
        ctx.progress.say(f"cost per hit, repetition {rep + 1}/{mode.reps}")
        for name, lim in limiters.items():
            out: list[float] = []

            def hits(lim: Any = lim, key: str = f"{name}-{rep}", out: list[float] = out) -> None:
                _, wall = timed_calls(lambda i: lim.hit(item, f"{key}-{i % NODES}"), n)
                out.append(wall / n * 1e6)

            server[name].append(server_cost(ctx.client, hits)[0])
            client[name].append(out[0])
    # The window's cost is a small difference of two larger figures: it is measured over
    # BLOCKS alternating pairs of small blocks (with and without the window) per repetition,
    # and each repetition keeps the median of its pairs' differences.
    block = max(50, n // BLOCKS)
    for rep in range(mode.reps):
        diffs: list[float] = []
        for b in range(BLOCKS):
            pair: dict[str, float] = {}
            for shape in (WINDOWED, PLAIN) if b % 2 == 0 else (PLAIN, WINDOWED):
                batch = list(orders(shape, block, f"{shape.id}{rep}b{b}"))

                def reserves(batch: list[Any] = batch, shape: FirmShape = shape) -> None:
                    for o in batch:
                        if not lg.reserve(o).accepted:
                            refused[shape.id] += 1

                pair[shape.id] = server_cost(ctx.client, reserves)[0]
            diffs.append(pair["WIN"] - pair["NOWIN"])
            server["WIN_blocks"].append(pair["WIN"])
            server["NOWIN_blocks"].append(pair["NOWIN"])
        window_server.append(statistics.median(diffs))
    return {
        "server_us": {
            "moving_window": summarize(server["moving_window"], "µs"),
            "sliding_window": summarize(server["sliding_window"], "µs"),
            "ledger_window_in_reserve": summarize(window_server, "µs"),
            "reserve_with_window_blocks": summarize(server["WIN_blocks"], "µs"),
            "reserve_without_window_blocks": summarize(server["NOWIN_blocks"], "µs"),
        },
        "client_us": {
            "moving_window": summarize(client["moving_window"], "µs"),
            "sliding_window": summarize(client["sliding_window"], "µs"),
        },
        "ratios": {
            "ledger_vs_moving_window_server": ratio_of(window_server, server["moving_window"]),
            "ledger_vs_sliding_window_server": ratio_of(window_server, server["sliding_window"]),
        },
        "ledger_refused_by_window": refused.get("WIN", 0),
    }


#: Traders of the memory firms: over 512 fields, so the aggregate hash is a hashtable, as it
#: is in any firm of realistic size. A smaller firm's hash is a listpack, which turns into a
#: hashtable when one field passes 64 bytes (a busy window's ring can): that would measure the
#: encoding switch of the whole hash, not the window.
LARGE_FIRM_TRADERS = 520


def window_bytes(
    ctx: Context, lg: Any, tag: str, messages: int, limit: int, send: Any = None
) -> tuple[int, int]:
    """Bytes one node's window adds after ``messages`` messages; and how many were accepted.

    Two firms of the same shape get the same orders at their first trader;
    only one has a window there. ``send(lg, shape, n)`` sends (default: pipelined).
    """
    with_w, without = (
        FirmShape(
            f"{tag}W",
            window_only=True,
            window_per_second=limit,
            window_traders=1,
            traders=LARGE_FIRM_TRADERS,
            accounts=1,
            desks=1,
        ),
        FirmShape(
            f"{tag}P",
            window_only=True,
            window_per_second=0,
            traders=LARGE_FIRM_TRADERS,
            accounts=1,
            desks=1,
        ),
    )
    lg.load_policy(parse_policy(policy_doc([with_w, without]), source=tag), by="bench")
    accepted = 0
    sizes = []
    for shape in (with_w, without):
        one = shape.paths()[:1]
        # Every node gets state (a field in the hash), so the hash is as in a large firm.
        fill_pipelined(lg, orders(shape, shape.traders, f"{tag}{shape.id}t"))
        if send is not None and shape is with_w:
            accepted = send(lg, shape, messages)
        else:
            got = fill_pipelined(lg, orders(shape, messages, f"{tag}{shape.id}", paths=one))
            accepted = got if shape is with_w else accepted
        sizes.append(int(ctx.client.memory_usage(lg.keys.agg(shape.id), samples=0) or 0))
    return sizes[0] - sizes[1], accepted


def memory(ctx: Context) -> dict[str, Any]:
    """Bytes per node after ``L`` messages in one second at a limit of ``L``/s."""
    lg = ctx.ledger("limmem")
    limiters = limiters_for(ctx.url)
    out: dict[str, dict[str, int]] = {
        "ledger": {},
        "moving_window": {},
        "sliding_window": {},
        "ledger_accepted": {},
    }
    for L in MEMORY_LIMITS:
        ctx.progress.say(f"memory per node at a limit of {L}/s")
        size, accepted = window_bytes(ctx, lg, f"M{L}", L, L)
        out["ledger"][str(L)] = size
        out["ledger_accepted"][str(L)] = accepted
        item = RateLimitItemPerSecond(L)
        for name, lim in limiters.items():
            lim.hit(item, f"mem-{name}-{L}", cost=L)
            out[name][str(L)] = limiter_bytes(ctx.client, name, lim, item, f"mem-{name}-{L}")
    return out


def run(ctx: Context) -> dict[str, Any]:
    c = cost(ctx)
    m = memory(ctx)
    key = str(LIMIT)
    rows = [
        row(
            "ledger message window, Redis CPU per hit (inside reserve)",
            c["server_us"]["ledger_window_in_reserve"],
            vs="limits moving window",
            ratio=c["ratios"]["ledger_vs_moving_window_server"],
            note="adds no round trip",
        ),
        row(
            "ledger message window, Redis CPU per hit",
            c["server_us"]["ledger_window_in_reserve"],
            vs="limits sliding-window counter",
            ratio=c["ratios"]["ledger_vs_sliding_window_server"],
        ),
        row("limits moving window, Redis CPU per hit", c["server_us"]["moving_window"]),
        row("limits sliding-window counter, Redis CPU per hit", c["server_us"]["sliding_window"]),
        row(
            "limits moving window, Python µs per hit (one round trip)",
            c["client_us"]["moving_window"],
        ),
        row(
            f"memory per node at {LIMIT}/s, ledger window",
            summarize([m["ledger"][key]], "B"),
            note="per node, " + ", ".join(f"{L}/s: {b} B" for L, b in m["ledger"].items()),
        ),
        row(
            f"memory per node at {LIMIT}/s, limits moving window",
            summarize([m["moving_window"][key]], "B"),
            note=", ".join(f"{L}/s: {b} B" for L, b in m["moving_window"].items()),
        ),
        row(
            f"memory per node at {LIMIT}/s, limits sliding-window counter",
            summarize([m["sliding_window"][key]], "B"),
            note=", ".join(f"{L}/s: {b} B" for L, b in m["sliding_window"].items()),
        ),
    ]
    return {
        "limit_per_s": LIMIT,
        "nodes": NODES,
        "cost": c,
        "memory_bytes_per_node": m,
        "rows": rows,
    }
