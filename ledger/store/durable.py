"""Durable acknowledgement: a change is acknowledged only once N replicas hold it.

Every mutating script call is sent as one non-transactional pipeline, so the
decision path stays one round trip::

    FCALL <function> ...            the decision, stored on the primary (or EVALSHA)
    PUBLISH <prefix>:durable ""     see below
    WAIT <replicas> <timeout_ms>    or WAITAOF 0 <replicas> <timeout_ms> with fsync

WAIT answers how many replicas have acknowledged the connection's last
*propagated* write. A retry that only replays a stored decision writes
nothing, so on a fresh connection WAIT would count replicas that never saw the
decision. PUBLISH is always propagated to replicas: it moves the connection's
replication offset to the present, past every earlier write of every client,
so the count WAIT returns covers the decision whether it was made or replayed.

On Redis Cluster the three commands go to the node that owns the call's
slot, on that node's own connection (still one round trip), and PUBLISH is
replaced by a write to a key in the same slot, ``P:{F}:durable``: a cluster
PUBLISH is delivered over the cluster bus, and whether it also enters the
shard's replication stream (and so moves the offset WAIT counts) is the
server's business, not a documented guarantee; a write in the shard always
does. A wait after many steps (:meth:`DurableWrites.confirm`) waits on every
primary, each through a marker key of its own slots.

The count is read, never assumed: below the setting the caller gets
:class:`NotDurable` (a :class:`LedgerUnavailable`, so a fail-closed
``RISK_UNAVAILABLE``; the gateway answers 503). The decision stays stored; a
retry with the same id replays it and is acknowledged once it is durable.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import redis

from ledger.errors import LedgerUnavailable

__all__ = ["Durability", "DurableWrites", "NotDurable", "ENV_VARS", "from_env", "env_message"]

#: The environment variables the CLI and the gateway read (README "High availability").
ENV_VARS: Final = ("LEDGER_DURABLE_REPLICAS", "LEDGER_DURABLE_TIMEOUT_MS", "LEDGER_DURABLE_FSYNC")
#: The wait when none is given: replication on one network answers in well under 1 ms.
DEFAULT_TIMEOUT_MS: Final = 100
#: A replica acknowledges every second; one silent for longer is not counted as live.
MAX_REPLICA_LAG_S: Final = 5
_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off", "")
#: A key's hash tag, as Redis Cluster reads it: the first {...} with something inside.
_TAG: Final = re.compile(r"\{([^}]+)\}")


class NotDurable(LedgerUnavailable):
    """Too few replicas confirmed a change in time; it is stored on the primary only.

    Fail closed: the caller treats it as ``RISK_UNAVAILABLE``. A retry with the
    same order id replays the stored decision, acknowledged once it is durable.
    """


@dataclass(frozen=True)
class Durability:
    """How many replicas must hold a change before it is acknowledged.

    Args:
        replicas: replicas that must confirm each change; 0 turns the wait off.
        timeout_ms: how long to wait for them (WAIT's timeout; 0 would wait forever,
            so it must be positive when ``replicas`` is).
        fsync: the replicas must also have written it to their append-only file
            (WAITAOF: Redis 7.2 or later, Valkey; replicas need ``appendonly yes``).
    """

    replicas: int = 0
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    fsync: bool = False

    def __post_init__(self) -> None:
        for name in ("replicas", "timeout_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"durable_{name} must be a whole number >= 0, got {value!r}")
        if self.replicas and not self.timeout_ms:
            raise ValueError("durable_timeout_ms must be positive (WAIT 0 would block forever)")
        if not isinstance(self.fsync, bool):
            raise ValueError(f"durable_fsync must be true or false, got {self.fsync!r}")
        if self.fsync and not self.replicas:
            raise ValueError("durable_fsync needs durable_replicas of at least 1")

    @property
    def on(self) -> bool:
        return self.replicas > 0

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`ledger.Ledger` and ``Ledger.from_url``."""
        return {
            "durable_replicas": self.replicas,
            "durable_timeout_ms": self.timeout_ms,
            "durable_fsync": self.fsync,
        }

    def describe(self) -> str:
        if not self.on:
            return "off"
        what = "fsynced by" if self.fsync else "held by"
        return f"{what} {self.replicas} replica(s) within {self.timeout_ms} ms"


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def from_env(env: Mapping[str, str] | None = None) -> Durability:
    """The setting from ``LEDGER_DURABLE_*`` (the CLI and the gateway); off when unset."""
    env = os.environ if env is None else env
    fsync_raw = env.get("LEDGER_DURABLE_FSYNC", "").strip().lower()
    if fsync_raw not in _TRUE + _FALSE:
        raise ValueError(f"LEDGER_DURABLE_FSYNC must be true or false, got {fsync_raw!r}")
    try:
        return Durability(
            _env_int(env, "LEDGER_DURABLE_REPLICAS", 0),
            _env_int(env, "LEDGER_DURABLE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS),
            fsync_raw in _TRUE,
        )
    except ValueError as exc:
        raise ValueError(env_message(exc)) from None


def env_message(exc: ValueError) -> str:
    """The message of a bad setting naming its variable: ``LEDGER_DURABLE_X``, not ``durable_x``."""
    message = str(exc)
    for name in ENV_VARS:
        message = message.replace(name.removeprefix("LEDGER_").lower(), name)
    return message


class DurableWrites:
    """Runs scripts with the durability wait appended; one per :class:`Ledger`."""

    def __init__(
        self, client: Any, setting: Durability, prefix: str, cluster: bool = False
    ) -> None:
        self.client = client
        self.setting = setting
        self.prefix = prefix
        self.channel = f"{prefix}:durable"
        self.cluster = cluster
        self._local = threading.local()
        self._fsync_checked = False
        #: A node failed or moved: the cluster's slot map is read again before the next call.
        self._refresh = False

    # -- Redis Cluster: the node of a slot, and a write in that slot ------------------

    def marker(self, key: str) -> str:
        """The key written before WAIT on a cluster: in ``key``'s slot (same hash tag)."""
        found = _TAG.search(key)
        return f"{self.prefix}:{{{found.group(1) if found else key}}}:durable"

    def _node_client(self, key: str) -> Any:
        """A plain client on the primary that owns ``key``'s slot."""
        if self._refresh:
            self._refresh = False
            self.client.nodes_manager.initialize()
        node = self.client.get_node_from_key(key)
        return self.client.get_redis_connection(node)

    def _node_markers(self) -> list[tuple[Any, str]]:
        """Each primary, with a marker key in one of its slots."""
        if self._refresh:
            self._refresh = False
            self.client.nodes_manager.initialize()
        out = []
        for node in self.client.get_primaries():
            i = 0
            while self.client.get_node_from_key(key := self.marker(f"{{n{i}}}")).name != node.name:
                i += 1
            out.append((self.client.get_redis_connection(node), key))
        return out

    def _send(self, pipe: Any) -> list[Any]:
        try:
            answers: list[Any] = pipe.execute(raise_on_error=False)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            # The node may have failed over: read the slot map afresh next time.
            self._refresh = self.cluster
            raise
        if self.cluster and any(
            isinstance(a, redis.exceptions.MovedError | redis.exceptions.AskError) for a in answers
        ):
            self._refresh = True
        return answers

    @property
    def on(self) -> bool:
        return self.setting.on

    def _wait_args(self) -> tuple[Any, ...]:
        s = self.setting
        if s.fsync:
            return ("WAITAOF", 0, s.replicas, s.timeout_ms)
        return ("WAIT", s.replicas, s.timeout_ms)

    def _check_fsync(self) -> None:
        """Refuse durable_fsync on a server without WAITAOF (Redis 7.0) before any write."""
        if self._fsync_checked or not self.setting.fsync:
            return
        # Valkey reports the Redis version it is compatible with (7.2.4 and up).
        server = self.client
        if self.cluster:
            server = self.client.get_redis_connection(self.client.get_primaries()[0])
        version = str(server.info("server").get("redis_version", "0"))
        if tuple(int(p) for p in version.split(".")[:2]) < (7, 2):
            raise NotDurable(
                "durable_fsync needs WAITAOF (Redis 7.2 or later, or Valkey); this server "
                f"(version {version}) has none: upgrade it or turn LEDGER_DURABLE_FSYNC off"
            )
        self._fsync_checked = True

    def _marked(self, answer: Any) -> None:
        """Raise if the write before WAIT was refused (e.g. an ACL without the
        channel): a replay's WAIT would then count nothing new, so fail closed."""
        if isinstance(answer, Exception):
            raise answer

    def _confirmed(self, answer: Any) -> int:
        if isinstance(answer, Exception):
            raise answer
        # WAITAOF answers [local fsyncs, replica fsyncs]; WAIT a count.
        return int(answer[1]) if isinstance(answer, list) else int(answer)

    def _require(self, confirmed: int) -> None:
        s = self.setting
        if confirmed < s.replicas:
            raise NotDurable(
                f"durability: {confirmed} of {s.replicas} replica(s) confirmed within "
                f"{s.timeout_ms} ms; the change is stored on the primary, a retry with "
                "the same id answers once it is durable"
            )

    @property
    def deferring(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    def call(
        self,
        queue: Callable[[Any, list[str], list[Any]], None],
        keys: list[str],
        args: list[Any],
        healed: Callable[[Any, BaseException], bool],
    ) -> Any:
        """The script call ``queue`` puts on a pipeline, then the wait, in one
        round trip; raises NotDurable. ``healed(server, error)`` says whether an
        error meant nothing ran (script or function missing) and is mended."""
        self._check_fsync()
        for attempt in range(2):
            # On a cluster: the connection of the node that owns the call's slot
            # (every key of one call shares it), so that WAIT asks that shard's replicas.
            server = self._node_client(keys[0]) if self.cluster else self.client
            pipe = server.pipeline(transaction=False)
            queue(pipe, keys, args)
            if self.cluster:
                pipe.set(self.marker(keys[0]), "")
            else:
                pipe.publish(self.channel, "")
            pipe.execute_command(*self._wait_args())
            result, marked, waited = self._send(pipe)
            if isinstance(result, Exception) and attempt == 0 and healed(server, result):
                # A restarted or flushed server: nothing ran; load and send again.
                continue
            if isinstance(result, Exception):
                raise result
            self._marked(marked)
            self._require(self._confirmed(waited))
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def append(self, pipe: Any) -> int:
        """Queue the wait at the end of ``pipe``; returns how many answers it adds."""
        if not self.on or self.deferring:
            return 0
        if self.cluster:
            # A cluster pipeline spreads over nodes: its callers wait per call instead.
            raise AssertionError("no pipelined durability wait on a cluster")
        self._check_fsync()
        pipe.publish(self.channel, "")
        pipe.execute_command(*self._wait_args())
        return 2

    def strip(self, answers: list[Any], added: int) -> list[Any]:
        """The pipeline's own answers, once the wait :meth:`append` queued was met."""
        if not added:
            return answers
        self._marked(answers[-2])
        self._require(self._confirmed(answers[-1]))
        return answers[:-added]

    def confirm(self) -> None:
        """Wait for every change made so far (one round trip); raises NotDurable."""
        if not self.on:
            return
        self._check_fsync()
        if self.cluster:
            # The steps may have written on any shard: every primary waits for its replicas.
            for server, key in self._node_markers():
                pipe = server.pipeline(transaction=False)
                pipe.set(key, "")
                pipe.execute_command(*self._wait_args())
                marked, waited = self._send(pipe)
                self._marked(marked)
                self._require(self._confirmed(waited))
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.publish(self.channel, "")
        pipe.execute_command(*self._wait_args())
        marked, waited = pipe.execute(raise_on_error=False)
        self._marked(marked)
        self._require(self._confirmed(waited))

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Scripts inside run without their own wait; one wait follows them all.

        For operations of many steps (a kill of every firm, a policy load):
        a missing replica must not stop the remaining steps, and one wait
        covers every earlier write.
        """
        depth = getattr(self._local, "depth", 0)
        if self.on and not depth:
            self._check_fsync()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
        if depth == 0:
            self.confirm()

    def not_ready(self) -> str | None:
        """Why this server cannot take writes as the setting asks now; None when it can.

        One ``INFO replication``: a replica (say, the old primary after a
        failover, or a URL that points at one) refuses every write, and too few
        live replicas would fail every change of this setting closed.
        """
        if self.cluster:
            for server, _ in self._node_markers():
                why = self._not_ready(server.info("replication"))
                if why:
                    return f"{server.get_connection_kwargs().get('port')}: {why}"
            return None
        return self._not_ready(self.client.info("replication"))

    def _not_ready(self, info: dict[str, Any]) -> str | None:
        role = str(info.get("role", "unknown"))
        if role != "master":
            return f"connected to a read-only {role}: every write would be refused"
        if not self.on:
            return None
        live = 0
        for i in range(int(info.get("connected_slaves", 0))):
            replica = info.get(f"slave{i}")
            if (
                isinstance(replica, dict)
                and replica.get("state") == "online"
                and int(replica.get("lag", 0)) <= MAX_REPLICA_LAG_S
            ):
                live += 1
        if live < self.setting.replicas:
            return (
                f"{live} live replica(s), durability needs {self.setting.replicas}: "
                "every change would fail closed"
            )
        return None
