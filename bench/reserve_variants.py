"""Variants of the production ``reserve`` script, for the profile scenario.

Each variant is the full source Redis runs (``lua/reserve-n.lua`` with its
includes, :func:`ledger.store.scripts.source`) with regex substitutions applied:

- *cuts* take one write out of the commit of an accepted order;
- *stops* return early at a point of a single order's path, for a cost
  ladder. A stop inside ``decide()`` makes it return nil, and the single-order
  branch then returns 0 at once (otherwise it would go on to store a reject).

Every pattern must match exactly once: a pattern the source no longer has,
or has twice, leaves its variant out with the reason, rather than measuring
something other than what it names. The variants are measurement tools only:
each leaves the ledger incomplete.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ledger.store.scripts import source

__all__ = ["Variant", "CUTS", "STOPS", "COMBINED", "variants"]

SCRIPT = "reserve-n.lua"


class Variant(NamedTuple):
    name: str
    #: What it takes out (cuts) or how far it runs (stops), for the report.
    what: str
    #: (pattern, replacement) pairs, each applied once; patterns use re.DOTALL.
    subs: tuple[tuple[str, str], ...]


def _off(pattern: str) -> tuple[str, str]:
    """Wrap one matched statement in ``if false then ... end``."""
    return f"({pattern})", r"if false then \1 end"


_EXIT_AFTER_DECIDE = (
    r"(local d, plan, transient = decide\(leg\)\n)",
    r"\1if d == nil then return 0 end\n",
)


def _stop_in_decide(line: str) -> tuple[tuple[str, str], ...]:
    return (f"({line})", r"\1do return nil end\n"), _EXIT_AFTER_DECIDE


CUTS: tuple[Variant, ...] = (
    Variant(
        "no_audit",
        "audit record (record table, msgpack, XADD)",
        ((r"(local function audit_leg\(leg, d\)\n)", r"\1  do return end\n"),),
    ),
    Variant(
        "no_order_record",
        "order hash (HSET of the order, two msgpack encodes)",
        (
            _off(
                r"rcall\('HSET', leg\.order_key, 'fp', leg\.fp, 'dec', cmsgpack\.pack\(plan\.d\), "
                r"'st', 'open',.*?'fn', 0\)"
            ),
        ),
    ),
    Variant(
        "no_open_index",
        "open-order index (ZADD of four members)",
        (_off(r"rcall\('ZADD', open_key, unpack\(members\)\)"),),
    ),
    Variant(
        "no_positions",
        "positions write (five msgpack encodes, HSET)",
        (
            (r"for field, p in pairs\(positions\) do", "for field, p in pairs({}) do"),
            _off(r"rcall\('HSET', pos_key, unpack\(pos_args\)\)"),
        ),
    ),
    Variant(
        "no_duplicate_key",
        "duplicate-guard key (SET with PX)",
        (_off(r"rcall\('SET', leg\.dup_key, [^\n]*\)"),),
    ),
    Variant(
        "no_time_in_force",
        "time in force hooks (due-order check, leg check, due time, expiry-index ZADD)",
        (
            _off(r"expire_due\(life, now, EXPIRE_PER_CALL\)"),
            (r"local bad_tif = tif_reject\(leg\.tif, leg\.exp, now\)", "local bad_tif = nil"),
            (r"due = due_of\(policy_key, leg\.tif, leg\.exp, info\.day, now\)", "due = nil"),
            _off(r"if plan\.due then rcall\('ZADD', life\.exp, plan\.due, leg\.order_key\) end"),
        ),
    ),
)
#: Every cut at once: the checks and the node states' write only.
COMBINED = "checks_only"

STOPS: tuple[Variant, ...] = (
    Variant(
        "until_prelude",
        "every shared function and table defined, KEYS, ARGV and the server time read",
        ((r"\n(?=if basket == '' then\n)", "\ndo return 0 end\n"),),
    ),
    Variant(
        "until_policy",
        "the idempotency record, kill switches, five policy records and entitlements read",
        _stop_in_decide(r"  if rej then return rej, nil, true end\n"),
    ),
    Variant(
        "until_state",
        "the controls, reference price, node states and positions read, limits in effect built",
        _stop_in_decide(r"  for i = 1, 5 do path\[i\]\.pos = pos\[i\] end\n"),
    ),
    Variant(
        "until_checks",
        "every check evaluated (duplicate guard, reduce-only, limits), nothing applied",
        _stop_in_decide(r"  local d = decision\(out, amount\)\n"),
    ),
    Variant(
        "until_decided",
        "the order applied to node states, positions and message rings in memory, no write",
        ((r"(local d, plan, transient = decide\(leg\)\n)", r"\1do return 0 end\n"),),
    ),
)


def _apply(text: str, subs: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The text with every substitution applied, or ``("", why)`` when one does not fit."""
    for pattern, repl in subs:
        found = len(re.findall(pattern, text, flags=re.DOTALL))
        if found != 1:
            where = "not found" if found == 0 else f"found {found} times"
            return "", f"/{pattern}/ {where} in the current reserve source"
        text = re.sub(pattern, repl, text, count=1, flags=re.DOTALL)
    return text, ""


def variants() -> tuple[dict[str, str], dict[str, str]]:
    """Script text per variant (``production`` first), and the variants left out with why."""
    try:
        base = source(SCRIPT)
    except (OSError, RuntimeError) as exc:
        return {}, {"production": f"lua/{SCRIPT} cannot be read: {exc}"}
    texts = {"production": base}
    missing: dict[str, str] = {}
    combined = base
    for v in CUTS:
        text, why = _apply(base, v.subs)
        if why:
            missing[v.name] = f"{v.what}: {why}"
            continue
        texts[v.name] = text
        if combined:
            combined, _ = _apply(combined, v.subs)
    if combined and len(texts) == 1 + len(CUTS):
        texts[COMBINED] = combined
    else:
        missing[COMBINED] = "every cut at once: needs every cut"
    for v in STOPS:
        text, why = _apply(base, v.subs)
        if why:
            missing[v.name] = f"{v.what}: {why}"
            continue
        texts[v.name] = text
    return texts, missing
