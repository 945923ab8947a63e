"""The audit archive: every audit record copied to hash-chained daily files before it may go.

The archiver (:mod:`.archiver`) writes the segments (:mod:`.segments`); :mod:`.verify` and
:mod:`.search` read them. The streams' side in Redis (the ``archive`` group, the backlog and
the trim it sets) is :mod:`ledger.store.audit_streams`, which the store and the facade use.

Archiver
    ``ledger audit archive --dir DIR [--follow]`` reads the global stream
    (``P:audit``) and every firm's (``P:{F}:audit``, firms from ``P:firms``,
    re-read on every poll) with one consumer group, ``archive``, and appends
    each record to ``DIR/<name>/<YYYY-MM-DD>.jsonl``: ``<name>`` is the firm id,
    or ``_global`` (firm ids cannot start with ``_``); the day is the UTC day
    of the entry id, i.e. of the server time the record was written at. A
    segment is gzipped (``.jsonl.gz``) once its day has passed and the stream
    has moved on. Lines are written and fsynced before they are acknowledged
    (XACK), and acknowledged in id order.

Chain
    Each line is ``{"stream", "id", "record", "prev", "hash"}``; ``hash`` is the
    SHA-256 of ``prev`` followed by the canonical JSON of ``[stream, id,
    record]``, and ``prev`` is the previous line's hash in that stream's
    chain (64 zeros for its first line), across segments. An edited, deleted
    or moved line breaks the chain; :func:`verify` names the first break.

Restarts
    On start the archiver reads the chain's last id and hash from each
    stream's newest segment (cutting a line torn by a crash), takes over the
    group's pending entries (XAUTOCLAIM), rereads its own with XREADGROUP id 0,
    acknowledges those already written (a crash between write and XACK) and
    writes the rest. Nothing is skipped (an entry leaves the pending list only
    when acknowledged) and nothing is written twice (ids at or below the
    chain's last are not written again).

One archiver at a time
    Two archivers would split the records between two chains and acknowledge
    out of order. The running one holds ``P:archive:lease`` (its ``--by``
    name, renewed on every poll, expiring after ``LEASE_MS``); another name is
    refused while it is held. The same name takes over at once, which is what a
    restart after a crash needs.

Trimming (lua/includes/common.lua, ``audit``)
    Scripts add with ``MAXLEN ~ audit_maxlen`` as before when the stream has no
    ``archive`` group. With one, the cheapest correct bound is to keep
    ``max(audit_maxlen, backlog + 1)`` records, where the backlog is the
    group's ``lag + pending`` from one ``XINFO GROUPS`` (O(1), Redis >= 7.0):
    the archiver acknowledges in id order, so its unacknowledged records are
    always the newest ``backlog`` ones and the approximate trim (which only
    ever drops fewer records than asked) cannot reach them. This costs one
    extra command per script call, no scan, no extra key, and the stream still
    holds the newest ``audit_maxlen`` records for ``audit tail``. The global
    stream (policy loads, global kills: a few records a day) is written from
    Python and simply not trimmed while an archiver is registered.

``audit.require_archive``
    A policy load with it registers the group on every firm's stream and the
    global one, so nothing is trimmed before the first archiver runs. When a
    firm's backlog reaches ``audit_maxlen``, reserve and replace answer
    ``RISK_UNAVAILABLE`` (not recorded: the trail is what is full) until the
    archiver catches up; fills, releases, cancels and kills still pass and are
    kept (the stream then grows past the bound rather than drop them).
"""

from ledger.audit.archiver import Archiver, ArchiverBusy
from ledger.audit.search import parse_time_ms, search
from ledger.audit.segments import GENESIS, GLOBAL_NAME, chain_hash, segments
from ledger.audit.verify import Break, VerifyReport, verify, verify_tail
from ledger.store.audit_streams import (
    GROUP,
    StreamLag,
    archive_lag,
    backlog,
    global_maxlen,
    register,
)

__all__ = [
    "GROUP",
    "GENESIS",
    "GLOBAL_NAME",
    "Archiver",
    "ArchiverBusy",
    "Break",
    "VerifyReport",
    "StreamLag",
    "archive_lag",
    "backlog",
    "register",
    "global_maxlen",
    "chain_hash",
    "verify",
    "verify_tail",
    "search",
    "parse_time_ms",
    "segments",
]
