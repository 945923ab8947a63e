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

import os
import re
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import redis
from redis.commands.core import Script

from ledger.reasons import Reason
from ledger.store.durable import DurableWrites
from ledger.store.library import Library, build, missing_function

__all__ = ["lua_dir", "source", "library", "ScriptSet", "SCRIPT_NAMES"]

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


def _expand(filename: str) -> tuple[list[str], str]:
    """The includes of ``lua/<filename>`` in the order they run (nested ones
    first) and its body without the include lines, codes resolved."""
    base = lua_dir()
    order: list[str] = []

    def walk(text: str) -> str:
        for name in _INCLUDE.findall(text):
            if name not in order:
                walk((base / "includes" / f"{name}.lua").read_text(encoding="utf-8"))
                order.append(name)
        return _INCLUDE.sub("", text)

    body = walk((base / filename).read_text(encoding="utf-8"))
    return order, _reasons(body, filename)


def _include_text(name: str) -> str:
    text = (lua_dir() / "includes" / f"{name}.lua").read_text(encoding="utf-8")
    return _reasons(_INCLUDE.sub("", text), f"includes/{name}.lua")


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
    """The full text EVALSHA runs for ``lua/<filename>``: includes, then the body
    (opening with ``begin_call()`` of includes/common.lua), codes resolved."""
    order, body = _expand(filename)
    start = "begin_call()\n" if "common" in order else ""
    return "".join(_include_text(name) for name in order) + start + body


@cache
def library() -> tuple[str, str]:
    """``(version, text)`` of the Redis Functions library of every script
    (:mod:`ledger.store.library`): the includes once, each body as a function."""
    bodies = {}
    for name, (_, _, filename) in _scripts().items():
        bodies[name] = _expand(filename)
    includes = {n: _include_text(n) for names, _ in bodies.values() for n in names}
    return build(bodies, includes)


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


class _Wire:
    """A direct call on one connection per thread, taken from the client's pool
    once and kept (per process: a forked child takes its own).

    A script call through ``client.execute_command`` checks a connection out of
    the pool and back in, asks the socket whether stale data is waiting (one
    more system call) and wraps the call in retry and metrics layers: about as
    much client CPU as the round trip itself. The answer is the same; on a
    broken connection the call is sent again once through the client (its
    retry policy, :data:`ledger.connect.RETRY`), a timeout is raised at once.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pool = client.connection_pool
        self._local = threading.local()

    def _connection(self) -> Any:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = self.pool.get_connection()
            local.conn, local.pid = conn, os.getpid()
        return conn

    def _drop(self, conn: Any) -> None:
        self._local.conn = None
        conn.disconnect()
        self.pool.release(conn)

    def call(self, *command: Any) -> Any:
        conn = self._connection()
        try:
            conn.send_command(*command)
            return conn.read_response()
        except redis.exceptions.TimeoutError:
            self._drop(conn)
            raise
        except (redis.exceptions.ConnectionError, OSError):
            self._drop(conn)
        return self.client.execute_command(*command)


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
    #: The function library holding this script (None: EVALSHA only).
    library: Library | None = None
    #: The RedisCluster client, on a cluster.
    cluster: Any = None
    #: The connection direct calls go out on (not on a cluster).
    wire: _Wire | None = None

    @property
    def function(self) -> str:
        """The name this script is registered under in the library."""
        assert self.library is not None
        return f"{self.name}_{self.library.version}"

    def __call__(self, keys: list[str], args: list[Any], client: Any = None) -> Any:
        if self.numkeys is not None and len(keys) != self.numkeys:
            raise AssertionError(f"{self.name} takes {self.numkeys} keys, got {len(keys)}")
        if client is None and self.durable is not None and not self.durable.deferring:
            return self.durable.call(self.queue, keys, args, self.healed)
        lib = self.library
        if client is not None:
            # A cluster pipeline would ask the server for an FCALL's keys first
            # (COMMAND GETKEYS, one more round trip per call): EVALSHA there.
            if lib is not None and self.cluster is None and lib.usable():
                return client.fcall(self.function, len(keys), *keys, *args)
            return self.script(keys=keys, args=args, client=client)
        if lib is not None and lib.usable():
            try:
                return self._fcall(keys, args)
            except redis.exceptions.ResponseError as exc:
                # Nothing ran: a missing function, or a cluster slot that moved.
                if missing_function(exc):
                    lib.lost()
                    if lib.usable():
                        return self._fcall(keys, args)
                elif not isinstance(exc, redis.exceptions.MovedError | redis.exceptions.AskError):
                    raise
        return self.script(keys=keys, args=args)

    def _fcall(self, keys: list[str], args: list[Any]) -> Any:
        if self.cluster is None:
            if self.wire is None:
                assert self.library is not None
                return self.library.client.fcall(self.function, len(keys), *keys, *args)
            return self.wire.call("FCALL", self.function, len(keys), *keys, *args)
        # The node of the keys' slot, named: RedisCluster would otherwise ask
        # the server which arguments of an FCALL are keys (a second round trip).
        node = self.cluster.get_node_from_key(keys[0])
        return self.cluster.execute_command(
            "FCALL", self.function, len(keys), *keys, *args, target_nodes=node
        )

    def queue(self, pipe: Any, keys: list[str], args: list[Any]) -> None:
        """Queue this call on a plain (one-server) pipeline: FCALL, else EVALSHA."""
        if self.library is not None and self.library.usable():
            pipe.fcall(self.function, len(keys), *keys, *args)
        else:
            # EVALSHA directly: a pipeline given a Script checks SCRIPT EXISTS
            # first, a second round trip on every call.
            pipe.evalsha(self.script.sha, len(keys), *keys, *args)

    def healed(self, server: Any, error: BaseException) -> bool:
        """After a queued call's error: True when nothing ran because the
        script or function was missing, and it is loaded (or bypassed) now."""
        if isinstance(error, redis.exceptions.NoScriptError):
            server.script_load(self.script.script)
            return True
        if self.library is not None and missing_function(error):
            self.library.lost()
            return True
        return False


class ScriptSet:
    """The scripts registered with one client; ``scripts.reserve(keys, args)``.

    Each call is an FCALL of the function library (:mod:`ledger.store.library`)
    when the server holds this version of it or this client can load it,
    else an EVALSHA of the same text. redis-py's :class:`Script` reloads a
    script on NOSCRIPT and a missing library is looked for again, so a Redis
    restart, SCRIPT FLUSH or FUNCTION FLUSH heals itself.
    """

    def __init__(
        self, client: Any, durable: DurableWrites | None = None, *, functions: bool = True
    ) -> None:
        # Every script changes state: with durability on, every one waits for it.
        durable = durable if durable is not None and durable.on else None
        version, text = library()
        self.library = Library(client, version, text) if functions else None
        cluster = client if hasattr(client, "nodes_manager") else None
        wire = _Wire(client) if cluster is None and hasattr(client, "connection_pool") else None
        for name, (numkeys, source_text, filename) in _scripts().items():
            script = client.register_script(source_text)
            bound = _Bound(name, numkeys, script, filename, durable, self.library, cluster, wire)
            setattr(self, name, bound)

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
