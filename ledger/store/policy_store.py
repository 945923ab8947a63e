"""How a validated policy is laid out in Redis for the scripts, and how it is swapped in."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgpack

import ledger.store.audit_streams as archive
from ledger._types import RedisClient
from ledger.errors import LedgerError
from ledger.policy.lifecycle import LIFE_FIELD
from ledger.policy.model import Node, Policy
from ledger.reasons import Reason
from ledger.store.keys import Keys
from ledger.store.scripts import ScriptSet

__all__ = ["firm_fields", "load", "fetch", "RING_IDS", "WINDOW_MS", "ring_id"]

_CHUNK = 1000
#: Window lengths of ``messages.per_second`` and ``messages.per_10s``.
WINDOW_MS = {"per_second": 1000, "per_10s": 10000}
#: The id of each (message type, window) ring in a node's state
#: (lua/includes/windows.lua); ids are part of the stored layout: never reuse one.
RING_IDS = {
    (mtype, window): i
    for i, (mtype, window) in enumerate(
        ((t, w) for t in ("all", "new", "replace", "cancel") for w in WINDOW_MS), start=1
    )
}
#: Rings of the cancel-to-new ratio (new orders, cancels) and of the fill throttle.
RATIO_NEW_RING, RATIO_CANCEL_RING, FILL_RING = 9, 10, 11
_TYPE_INDEX = {"all": 0, "new": 1, "replace": 2, "cancel": 3}


def ring_id(mtype: str, window_ms: int) -> int:
    """The ring of a (message type, window length): 1 s and 10 s keep their ids; any other
    length gets 100 + 4 x its ms + the type's index, unique and stable across loads."""
    for name, ms in WINDOW_MS.items():
        if ms == window_ms:
            return RING_IDS[(mtype, name)]
    return 100 + 4 * window_ms + _TYPE_INDEX[mtype]


def _record(node: Node) -> bytes:
    """The msgpack node record the scripts unpack (see lua/includes/path.lua)."""
    limits = dict(node.limits.items())
    record: dict[str, Any] = {}
    if node.parent:
        record["p"] = node.parent
    if limits:
        record["l"] = limits
    windows = _windows(node)
    if windows:
        record["w"] = windows
    if node.limits.shadow:
        record["sh"] = {name: True for name in sorted(node.limits.shadow)}
    if node.state != "enabled":
        record["st"] = node.state
    if node.symbols is not None:
        record["rs"] = 1
    if node.venues is not None:
        record["rv"] = 1
    ratio = node.limits.cancel_to_new
    if ratio is not None:
        # Ten buckets per window, like the message windows (windows.lua).
        record["cr"] = {
            "r": ratio.max_ratio_hundredths,
            "m": ratio.min_messages,
            "w": ratio.window_s * 100,
        }
    throttle = node.limits.fill_throttle
    if throttle is not None:
        record["ft"] = {"n": throttle.trigger_count, "w": throttle.window_s * 100}
    packed: bytes = msgpack.packb(record, use_bin_type=True)
    return packed


def _windows(node: Node) -> dict[str, list[int]]:
    """Per message type, the windows a message of that type counts in, as one flat
    list of (limit, ring id, bucket ms) triples.

    Computed here once so that a decision builds no strings or tables for them.
    """
    out: dict[str, list[int]] = {}
    for mtype in ("new", "replace", "cancel"):
        rows: list[int] = []
        for counted in ("all", mtype):
            caps = node.limits.messages.get(counted)
            for _, ms, limit in caps.windows() if caps else ():
                rows += [limit, ring_id(counted, ms), ms // 10]
        if rows:
            out[mtype] = rows
    return out


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def firm_fields(
    policy: Policy, firm: str, rev: int, now_ms: int, load_id: str | None = None
) -> dict[str, Any]:
    """Every field of one firm's policy hash; ``now_ms`` anchors the trading-day table.

    ``load_id`` (``meta|lid``), new for every load, tells the scripts that the
    records they unpacked before are still the ones stored (lua/includes/path.lua).
    """
    controls = policy.controls
    day = controls.trading_day
    fields: dict[str, Any] = {
        "meta|rev": rev,
        "meta|sha": policy.sha256,
        "meta|mu": policy.minor_units,
        "meta|day": _pack({"r": day.roll_ms, "s": day.segments(now_ms)}),
        "meta|ovmax": controls.max_override_ms,
        LIFE_FIELD: _pack(controls.lifecycle.packed()),
    }
    if load_id is not None:
        fields["meta|lid"] = load_id
    if controls.require_archive:
        fields["meta|ra"] = 1
    if controls.reference_prices is not None:
        px = controls.reference_prices
        fields["meta|px"] = _pack({"a": px.max_age_ms, "j": px.max_jump_bps})
    if controls.tiers:
        fields["meta|tiers"] = 1
    for tier in controls.tiers.values():
        record: dict[str, Any] = {"t": tier.name, "c": tier.price_collar_bps}
        if tier.max_order_qty is not None:
            record["q"] = tier.max_order_qty
        if tier.max_order_notional is not None:
            record["n"] = tier.max_order_notional
        packed = _pack(record)
        for symbol in tier.symbols:
            # The contract multiplier, when not 1 (lua/includes/money.lua).
            m = tier.multiplier_of(symbol)
            fields[f"s|{symbol}"] = packed if m is None else _pack({**record, "m": list(m)})
    for node in policy.nodes.values():
        if node.firm != firm:
            continue
        fields[node.scope] = _record(node)
        for account in node.accounts:
            fields[f"e|{node.scope}|account:{account}"] = 1
        for strategy in node.strategies:
            fields[f"e|{node.scope}|strategy:{strategy}"] = 1
        for symbol in node.symbols or ():
            fields[f"es|{node.scope}|{symbol}"] = 1
        for venue in node.venues or ():
            fields[f"ev|{node.scope}|{venue}"] = 1
    return fields


def load(
    client: RedisClient,
    keys: Keys,
    scripts: ScriptSet,
    policy: Policy,
    *,
    by: str,
    source: str,
    audit_maxlen: int,
) -> int:
    """Stage and swap the policy of every firm; returns the new revision.

    Each firm's swap is one script call, so any decision sees one firm's old
    or new policy whole. Firms dropped from the policy get an empty policy
    (their orders are then refused as UNKNOWN_NODE; open ones can still be
    filled, cancelled and released).

    Two loads at once leave exactly one of them live, never a mix: each
    stages into its own keys, and every swap (firm hashes, routes, document)
    only moves to a newer revision. The newest load always completes; an
    older one that finds a newer load under way or in place raises
    :class:`LedgerError` (retry it to make it the newest).
    """
    rev = int(client.hincrby(keys.policy_doc(), "seq", 1))
    firms = policy.firms
    # Named before anything is swapped, then the revision counter is read again:
    # a load that takes a newer revision after this check reads the firm set
    # after these firms are in it, so it swaps (or drops) every firm this load
    # may touch, and a load that started before this one sees it and stops.
    if firms:
        client.sadd(keys.firms(), *firms)
    if int(client.hget(keys.policy_doc(), "seq") or 0) != rev:
        raise LedgerError(_LOST_RACE)
    # On a cluster the global kill lives in each firm's slot: a firm gets it
    # before its policy goes live, so it never trades through an active kill.
    kill_meta = client.hgetall(keys.global_kill_meta()) if keys.cluster else {}
    global_why = client.get(keys.global_kill()) if keys.cluster else None
    known = {m.decode() for m in client.smembers(keys.firms())}
    load_id = uuid.uuid4().hex
    server_s, server_us = client.time()
    server_ms = int(server_s) * 1000 + int(server_us) // 1000
    for firm in [*firms, *sorted(known - set(firms))]:
        fields = (
            firm_fields(policy, firm, rev, server_ms, load_id)
            if firm in firms
            else {"meta|rev": rev, "meta|removed": 1}
        )
        staging = keys.policy_next(firm, rev)
        _stage(client, staging, fields)
        if global_why is not None:
            scripts.kill(
                [
                    keys.policy(firm),
                    keys.kills(firm),
                    keys.global_kill(firm),
                    keys.open_index(firm),
                    keys.audit(firm),
                ],
                [
                    "kill",
                    "global",
                    kill_meta.get(b"by", b"unknown"),
                    global_why,
                    audit_maxlen,
                    firm,
                ],
            )
        if policy.controls.require_archive:
            # Kept from now on, whether or not an archiver has run yet.
            archive.register(client, keys.audit(firm))
        code, _previous = scripts.load_policy(
            [keys.policy(firm), staging, keys.audit(firm)],
            [rev, policy.sha256, by, source, audit_maxlen],
        )
        if code.decode() != Reason.OK.value:
            raise LedgerError(_LOST_RACE)
    _write_routes(client, keys, scripts, policy, rev)
    now_ms = int(time.time() * 1000)
    if policy.controls.require_archive:
        archive.register(client, keys.audit())
    global_maxlen = archive.global_maxlen(client, keys, audit_maxlen)
    code, _previous = scripts.publish_policy(
        [keys.policy_doc()],
        [rev, "doc", policy.pack(), "sha", policy.sha256, "by", by]
        + ["source", source, "at_ms", now_ms],
    )
    if code.decode() != Reason.OK.value:
        raise LedgerError(_LOST_RACE)
    client.xadd(
        keys.audit(),
        {
            "m": msgpack.packb(
                {
                    "op": "policy_load",
                    "t": now_ms,
                    "rev": rev,
                    "sha": policy.sha256,
                    "by": by,
                    "source": source,
                    "firms": firms,
                    "code": "OK",
                }
            )
        },
        maxlen=global_maxlen,
        approximate=True,
    )
    return rev


_LOST_RACE = "policy load lost a race with a newer load, which is the one in force; retry"
#: A staged copy outlives a loader that dies between staging and swap by this much at most.
STAGING_TTL_MS = 600_000


def _stage(client: RedisClient, key: str, fields: dict[str, Any]) -> None:
    """Write ``fields`` into this load's own staging hash, expiring if never swapped in."""
    items = list(fields.items())
    pipe = client.pipeline(transaction=False)
    for i in range(0, len(items), _CHUNK):
        pipe.hset(key, mapping=dict(items[i : i + _CHUNK]))
        # After each chunk: a loader dying mid-way leaves nothing without a TTL.
        pipe.pexpire(key, STAGING_TTL_MS)
    pipe.execute()


def routes(policy: Policy, rev: int) -> dict[str, Any]:
    """What a client needs to route an order or a scope, without the whole policy."""
    fields: dict[str, Any] = {"meta|mu": policy.minor_units, "meta|rev": rev}
    for node in policy.nodes.values():
        fields[node.scope] = node.firm
    for scope, node in policy.nodes.items():
        if node.kind == "account" and node.parent:
            fields[scope] = f"{node.firm}|{node.parent.partition(':')[2]}"
    return fields


def _write_routes(
    client: RedisClient, keys: Keys, scripts: ScriptSet, policy: Policy, rev: int
) -> None:
    staging = keys.routes_next(rev)
    _stage(client, staging, routes(policy, rev))
    # Same slot ({routes}), so this also holds on a cluster: clients see one whole table.
    code, _previous = scripts.swap_routes([keys.routes(), staging], [rev])
    if code.decode() != Reason.OK.value:
        raise LedgerError(_LOST_RACE)


def fetch(client: RedisClient, keys: Keys) -> tuple[int, Policy] | None:
    """The policy clients route with, and its revision; None if none was ever loaded."""
    raw = client.hmget(keys.policy_doc(), "rev", "doc")
    if raw[0] is None or raw[1] is None:
        return None
    return int(raw[0]), Policy.unpack(raw[1])


def revision(client: RedisClient, keys: Keys) -> int | None:
    raw = client.hget(keys.policy_doc(), "rev")
    return int(raw) if raw is not None else None
