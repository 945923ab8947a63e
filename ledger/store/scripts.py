"""Loads the Lua scripts from ``lua/`` and registers them with a Redis client.

One file per atomic operation, named ``verbNoun-<numKeys>.lua``; the key
count in the name is checked on every call. ``-n`` marks a script whose key
count depends on its input (reserve: fixed keys, then two per order of a
basket). ``--- @include "name"`` pulls in ``lua/includes/name.lua`` once.
Reason codes are written ``R.NAME`` in Lua and replaced by the string
literal from :mod:`ledger.reasons` when the script is loaded; a name that
is not in the table stops the load, so a script can only ever return a
code Python knows (and pays nothing for the lookup at run time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from redis.commands.core import Script

from ledger.reasons import Reason
from ledger.store.durable import DurableWrites

__all__ = ["lua_dir", "source", "ScriptSet", "SCRIPT_NAMES"]

_INCLUDE = re.compile(r'^--- @include "([a-z_]+)"$', re.MULTILINE)
_NAME = re.compile(r"^([a-z]+(?:[A-Z][a-z]+)*)-(\d+|n)\.lua$")


def lua_dir() -> Path:
    """The scripts shipped in the wheel (``ledger/lua``), else the source tree's ``lua/``."""
    packaged = resources.files("ledger") / "lua"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "lua"


_REASON = re.compile(r"\bR\.([A-Za-z_]+)")


def _reasons(text: str, filename: str) -> str:
    def literal(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in Reason.__members__:
            raise RuntimeError(f"lua/{filename}: unknown reason code R.{name}")
        return f"'{Reason[name].value}'"

    return _REASON.sub(literal, text)


@cache
def _scripts() -> dict[str, tuple[int | None, str, str]]:
    out = {}
    base = lua_dir()
    for path in sorted(base.glob("*.lua")):
        match = _NAME.match(path.name)
        if not match:
            raise RuntimeError(f"{path}: script names are verbNoun-<numKeys>.lua")
        # loadPolicy-3.lua is called as scripts.load_policy
        name = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), match.group(1))
        count = match.group(2)
        out[name] = (None if count == "n" else int(count), source(path.name), path.name)
    return out


def source(filename: str) -> str:
    """The full text Redis runs for ``lua/<filename>``: includes and body, codes resolved."""
    base = lua_dir()
    seen: set[str] = set()

    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return ""
        seen.add(name)
        text = (base / "includes" / f"{name}.lua").read_text(encoding="utf-8")
        return _INCLUDE.sub(include, text)

    body = (base / filename).read_text(encoding="utf-8")
    return _reasons(_INCLUDE.sub(include, body), filename)


SCRIPT_NAMES = (
    "reserve",
    "replace",
    "cancel",
    "release",
    "fill",
    "kill",
    "load_policy",
    "set_state",
    "set_prices",
    "resume_symbol",
    "request_override",
    "decide_override",
    "set_stress",
    "swap_routes",
    "publish_policy",
    "reconcile_order",
    "sweep_expired",
)


@dataclass
class _Bound:
    name: str
    #: None for a script whose key count depends on its input.
    numkeys: int | None
    script: Script
    #: The file under lua/ this script was loaded from.
    filename: str
    #: The durability wait (ledger/store/durable.py) every direct call is sent with, if on.
    durable: DurableWrites | None = None

    def __call__(self, keys: list[str], args: list[Any], client: Any = None) -> Any:
        if self.numkeys is not None and len(keys) != self.numkeys:
            raise AssertionError(f"{self.name} takes {self.numkeys} keys, got {len(keys)}")
        if client is None and self.durable is not None and not self.durable.deferring:
            return self.durable.call(self.script, keys, args)
        return self.script(keys=keys, args=args, client=client)


class ScriptSet:
    """The scripts registered with one client; ``scripts.reserve(keys, args)``.

    redis-py's :class:`Script` runs EVALSHA and reloads the script on
    NOSCRIPT, so a Redis restart or SCRIPT FLUSH heals itself.
    """

    def __init__(self, client: Any, durable: DurableWrites | None = None) -> None:
        # Every script changes state: with durability on, every one waits for it.
        durable = durable if durable is not None and durable.on else None
        for name, (numkeys, text, filename) in _scripts().items():
            script = client.register_script(text)
            setattr(self, name, _Bound(name, numkeys, script, filename, durable))

    reserve: _Bound
    replace: _Bound
    cancel: _Bound
    release: _Bound
    fill: _Bound
    kill: _Bound
    load_policy: _Bound
    set_state: _Bound
    set_prices: _Bound
    resume_symbol: _Bound
    request_override: _Bound
    decide_override: _Bound
    set_stress: _Bound
    swap_routes: _Bound
    publish_policy: _Bound
    reconcile_order: _Bound
    sweep_expired: _Bound

    def all(self) -> list[_Bound]:
        return [getattr(self, name) for name in _scripts()]
