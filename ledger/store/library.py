"""Every script of ``lua/`` as one Redis Functions library, loaded once and called by FCALL.

A script run by EVALSHA executes its whole text on every call: each shared
function of ``lua/includes/`` is defined again before the first check runs.
The library defines the includes once, when it is loaded, and wraps each
operation file unchanged in a function registered as ``<name>_<version>``
(``reserve_1a2b3c4d5e6f``). The version is a hash of the library's text, so
a server holding an older library simply has no function of this version's
name, and two versions of the ledger can run side by side during a rollout.

Who loads it: any client allowed FUNCTION LOAD, on its first script call
(the admin user: ``ledger load-policy``, the archiver, tests). The gateway's
ACL user may run FCALL but not FUNCTION: until an admin has loaded this
version, a gateway runs the same scripts by EVALSHA, and looks for the
library again every :data:`RECHECK_S` seconds. Both paths run the same text
and give the same answers; the library is only cheaper.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

__all__ = ["build", "Library", "RECHECK_S", "missing_function"]

#: Seconds between two looks for a library that was absent or could not be loaded.
RECHECK_S = 5.0


def _merge(orders: list[list[str]]) -> list[str]:
    """One include order that keeps every script's own order (a local must be
    defined before the text that uses it); refuses orders that contradict."""
    after: dict[str, set[str]] = {}
    first: dict[str, int] = {}
    for order in orders:
        for i, name in enumerate(order):
            first.setdefault(name, len(first))
            after.setdefault(name, set()).update(order[:i])
    out: list[str] = []
    while len(out) < len(first):
        ready = [n for n in first if n not in out and after[n] <= set(out)]
        if not ready:
            names = sorted(first)
            raise RuntimeError(f"lua/includes: scripts include {names} in orders that conflict")
        out.append(min(ready, key=first.__getitem__))
    return out


def build(bodies: dict[str, tuple[list[str], str]], includes: dict[str, str]) -> tuple[str, str]:
    """``(version, library text)`` from each script's (include order, body) by
    name and each include's text; every body runs as ``<name>_<version>``."""
    order = _merge([names for names, _ in bodies.values()])
    parts = [includes[name] for name in order]
    for name, (names, body) in bodies.items():
        # KEYS and ARGV become the function's arguments: the body runs unchanged.
        start = "begin_call()\n" if "common" in names else ""
        parts.append(f"local function op_{name}(KEYS, ARGV)\n{start}{body}\nend\n")
    core = "\n".join(parts)
    version = hashlib.sha1(core.encode("utf-8")).hexdigest()[:12]
    registers = [f"redis.register_function('{name}_{version}', op_{name})" for name in bodies]
    # A read-only probe: FCALL of it answers whether this version is loaded.
    registers.append(
        f"redis.register_function{{function_name = 'ledger_{version}', "
        f"callback = function() return '{version}' end, flags = {{'no-writes'}}}}"
    )
    text = f"#!lua name=ledger_{version}\n{core}\n" + "\n".join(registers) + "\n"
    return version, text


def missing_function(exc: BaseException) -> bool:
    """True for the error of an FCALL whose function the server does not hold."""
    return isinstance(exc, redis.exceptions.ResponseError) and "Function not found" in str(exc)


@dataclass
class Library:
    """Whether one server (or cluster) holds this library version, for one client.

    ``ready`` is read on every call; it turns false when the library is absent
    and cannot be loaded with this client's rights, and is looked at again
    after :data:`RECHECK_S`.
    """

    client: Any
    version: str
    text: str
    ready: bool = False
    _next_look: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def probe(self) -> str:
        return f"ledger_{self.version}"

    def usable(self) -> bool:
        """True when FCALL can be used; looks (and loads) at most every RECHECK_S."""
        if self.ready:
            return True
        if time.monotonic() < self._next_look:
            return False
        with self._lock:
            if not self.ready and time.monotonic() >= self._next_look:
                self._look()
        return self.ready

    def _look(self) -> None:
        try:
            self.client.fcall(self.probe, 0)
            self.ready = True
        except redis.exceptions.NoPermissionError:
            # A user without FCALL runs the scripts by EVALSHA.
            self.ready = False
        except redis.exceptions.ResponseError as exc:
            if not missing_function(exc) and "unknown command" not in str(exc).lower():
                raise
            self.ready = self.load()
        if not self.ready:
            self._next_look = time.monotonic() + RECHECK_S

    def load(self) -> bool:
        """FUNCTION LOAD (on every primary of a cluster); False without the right to."""
        try:
            self.client.function_load(self.text, replace=True)
        except redis.exceptions.NoPermissionError:
            return False
        except redis.exceptions.ResponseError as exc:
            # An older server (before 7.0) has no FUNCTION command.
            if "unknown command" in str(exc).lower():
                return False
            raise
        return True

    def lost(self) -> None:
        """An FCALL found no function (FUNCTION FLUSH, a server restarted empty): look again."""
        self.ready = False
        self._next_look = 0.0
