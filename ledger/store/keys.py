"""Every Redis key the ledger uses, built in one place.

``P`` is the key prefix (default ``ledger``), ``F`` a firm id, ``S`` a scope
such as ``desk:EQ-CASH``. ``{F}`` is a Redis Cluster hash tag: every key that
one decision touches carries its firm's tag, so each script call maps to a
single slot and the same scripts run unchanged on a cluster with firms spread
over shards. Scripts never build key names; all of them arrive in ``KEYS``.

Per firm (slot of ``{F}``):

=============================  ======  ==================================================
``P:{F}:policy``               hash    the firm's live policy: ``S`` -> msgpack node
                                       record, ``e|S1|S2`` -> 1 for each entitlement,
                                       ``meta|rev`` / ``meta|sha``, ``meta|lid`` (an id
                                       of each load's own: scripts keep records unpacked
                                       under it). Swapped whole by RENAME.
``P:{F}:policy:next:REV``      hash    staging copy of load ``REV``, renamed into place by
                                       its swap; deleted if a newer load got there first,
                                       expires after ``STAGING_TTL_MS`` if the loader dies
``P:{F}:kills``                hash    ``S`` -> msgpack ``{by, why, t, auto}`` per active kill
                                       (``auto`` = 1 when set by a ``system:`` identity)
``P:{F}:kill:global``          string  cluster mode only: the global kill mirrored here
``P:{F}:agg``                  hash    state of every node of the firm: ``S`` -> msgpack
                                       ``[ob, os, fb, fs, n, rings]``: open buy/sell and
                                       filled buy/sell notional (minor units), open
                                       orders, message-window rings by ring id (``ring_id``)
                                       (lua/includes/exposure.lua, windows.lua)
``P:{F}:open``                 zset    open-order index, all scores 0, members
                                       ``S|ORDER_ID`` for the order's desk, account,
                                       strategy and trader: a kill reads its scope's
                                       orders with one ZRANGEBYLEX (a firm's: the desk
                                       entries; the whole index is the firm's)
``P:{F}:order:ID``             hash    one order: path, side, qty, price, cum qty,
                                       reserved and filled notional, state, first decision,
                                       ``f|FILL_ID`` per fill seen (lua/includes/path.lua),
                                       ``tif`` unless DAY, ``ro`` = 1 for an order flagged
                                       reduce-only; once closed it expires after the
                                       policy's ``retention.closed_orders``
``P:{F}:expiry``               zset    open orders with a due time (all but GTC): member the
                                       order's key, score the due time in ms of server time
                                       (lua/includes/expiry.lua)
``P:{F}:audit``                stream  msgpack audit records of the firm, bounded length; with
                                       the consumer group ``archive``, unarchived ones are
                                       never trimmed (ledger/audit/)
``P:{F}:controls``             hash    runtime switches that policy loads keep: strategy
                                       and account state ``s|S``, stress ``x|S``, overrides
                                       in force ``o|S`` (docs/controls-layout.md)
``P:{F}:overrides``            hash    every override request, pending or decided
``P:{F}:prices``               hash    reference price and halt per symbol
``P:{F}:pos``                  hash    per node and symbol: open and filled notional and qty
``P:{F}:dup:FP``               string  duplicate-order guard, expires with its window
``P:{F}:durable``              string  Redis Cluster with durable acknowledgement only:
                                       written (empty) before each WAIT on the firm's
                                       shard, so that a replayed decision still waits for
                                       that shard's replicas (ledger/store/durable.py); a wait
                                       after many steps writes ``P:{nI}:durable`` on
                                       each primary (``I`` the first number whose slot
                                       the primary owns)
=============================  ======  ==================================================

Global (not firm-tagged; never touched by an order decision except the kill):

=============================  ======  ==================================================
``P:kill:global``              string  the global kill switch; its existence alone stops
                                       all trading (``redis-cli SET ledger:kill:global why``)
``P:kill:global:meta``         hash    who/when of a kill set through the ledger
``P:policy``                   hash    the whole policy document (msgpack), ``rev``,
                                       ``sha``, ``by``, ``at_ms``: what clients route with;
                                       ``seq``: the last revision a load took
``P:{routes}``                 hash    routing for clients, replaced whole at each load:
                                       ``account:A`` -> ``F|D``, other scopes -> ``F``,
                                       ``meta|mu`` minor units, ``meta|rev``
``P:{routes}:next:REV``        hash    its staging copy of load ``REV`` (same slot, for
                                       RENAME; deleted or expiring like a firm's)
``P:firms``                    set     every firm a policy load ever named (added before
                                       the load swaps anything)
``P:audit``                    stream  global audit: policy loads, global kills
``P:tokens``                   hash    gateway API tokens: sha256 of token -> role, name,
                                       desks (ledger/store/tokens.py); only hashes are stored
``P:events``                   pubsub  kill and unkill events the gateways publish; expiry
                                       events the scripts publish (lua/includes/expiry.lua)
``P:durable``                  pubsub  nothing listens: the PUBLISH before each durability
                                       WAIT, so that it covers a replayed decision too
                                       (ledger/store/durable.py)
``P:archive:lease``            string  the running audit archiver's name, expiring unless
                                       renewed (ledger/audit/): one archiver at a time
=============================  ======  ==================================================

One aggregate hash and one index per firm (rather than a key per node)
keep every script's keys computable from the firm and the order id alone,
so nothing is looked up before a decision and no key is built in Lua.

In single-instance mode a decision reads ``P:kill:global`` directly. On a
cluster that key lives in some other slot, so ``kill global`` also writes
``P:{F}:kill:global`` for every firm and decisions read that instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ledger.errors import InvalidInput

__all__ = ["Keys", "ORDER_ID", "LEVELS", "check_id"]

#: Order and fill ids: printable, no braces (they would move the hash tag), no spaces.
ORDER_ID: Final = re.compile(r"[A-Za-z0-9._:/@#+=-]{1,128}")
#: The five levels of an order's path, in the order scripts receive them.
LEVELS: Final = ("firm", "desk", "account", "strategy", "trader")


def check_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not ORDER_ID.fullmatch(value):
        raise InvalidInput(
            field,
            "must be 1-128 characters of letters, digits and ._:/@#+=- (no spaces or braces)",
        )
    return value


@dataclass(frozen=True)
class Keys:
    """Key builders for one prefix and deployment mode."""

    prefix: str = "ledger"
    cluster: bool = False

    def _f(self, firm: str) -> str:
        return f"{self.prefix}:{{{firm}}}"

    def policy(self, firm: str) -> str:
        return f"{self._f(firm)}:policy"

    def policy_next(self, firm: str, rev: int) -> str:
        # One staging copy per load: two loads at once never write into the same hash.
        return f"{self._f(firm)}:policy:next:{rev}"

    def kills(self, firm: str) -> str:
        return f"{self._f(firm)}:kills"

    def global_kill(self, firm: str | None = None) -> str:
        """The key a decision for ``firm`` reads for the global kill."""
        if self.cluster and firm is not None:
            return f"{self._f(firm)}:kill:global"
        return f"{self.prefix}:kill:global"

    def global_kill_meta(self) -> str:
        return f"{self.prefix}:kill:global:meta"

    def agg(self, firm: str) -> str:
        return f"{self._f(firm)}:agg"

    def open_index(self, firm: str) -> str:
        return f"{self._f(firm)}:open"

    def order(self, firm: str, order_id: str) -> str:
        return f"{self._f(firm)}:order:{order_id}"

    def expiry(self, firm: str) -> str:
        return f"{self._f(firm)}:expiry"

    def controls(self, firm: str) -> str:
        return f"{self._f(firm)}:controls"

    def overrides(self, firm: str) -> str:
        return f"{self._f(firm)}:overrides"

    def prices(self, firm: str) -> str:
        return f"{self._f(firm)}:prices"

    def positions(self, firm: str) -> str:
        return f"{self._f(firm)}:pos"

    def durable_marker(self, firm: str) -> str:
        """Cluster only: the key written before a durability WAIT on the firm's shard."""
        return f"{self._f(firm)}:durable"

    def duplicate(self, firm: str, fingerprint: str) -> str:
        return f"{self._f(firm)}:dup:{fingerprint}"

    def audit(self, firm: str | None = None) -> str:
        return f"{self._f(firm)}:audit" if firm is not None else f"{self.prefix}:audit"

    def policy_doc(self) -> str:
        return f"{self.prefix}:policy"

    def routes(self) -> str:
        return f"{self.prefix}:{{routes}}"

    def routes_next(self, rev: int) -> str:
        return f"{self.prefix}:{{routes}}:next:{rev}"

    def firms(self) -> str:
        return f"{self.prefix}:firms"

    def archive_lease(self) -> str:
        return f"{self.prefix}:archive:lease"
