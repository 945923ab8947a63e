"""Token lookups cached per process for a bounded time, dropped when a token is revoked.

Without a cache every request would pay a second Redis round trip (the
token's ``HGET``) on top of the decision's one. So each worker process keeps
the principals of the tokens it has seen, under their keyed digest (never
the token itself), and:

- **the bound**: an entry is used for at most ``ttl_ms``
  (``LEDGER_TOKEN_CACHE_MS``, 1000 by default), counted from before the read
  that filled it. A token revoked at time R is refused by every worker for
  every request whose token check starts after R + ``ttl_ms``, whatever
  happens to the channel below: this is what fails closed;
- **the channel**: each process subscribes to the events channel
  (``P:events``), where :meth:`ledger.tokens.TokenStore.revoke` announces
  every revoke. Any message there (a revoke, a kill, anything) drops the
  whole cache; so does the subscription's confirmation (what was cached
  before it may have missed a message) and its loss. The channel is read
  without blocking at the start of every lookup, so an announced revoke
  applies from the first request after the message reaches the process,
  typically well under a millisecond on one network;
- a token that is unknown is never cached, so a new token works at once;
- ``ttl_ms`` 0 turns the cache off: one ``HGET`` per request, as before.

A channel that cannot be read (Redis away, a user without the channel) is
tried again every :data:`RESUBSCRIBE_S` seconds; until then only the bound
holds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ledger.store.tokens import Principal, TokenStore

__all__ = ["TokenCache", "RESUBSCRIBE_S", "MAX_ENTRIES"]

log = logging.getLogger(__name__)

#: Seconds between attempts to subscribe again after the channel failed.
RESUBSCRIBE_S = 1.0
#: Only valid tokens are cached, so this is never reached in practice; past it, start over.
MAX_ENTRIES = 10_000


class TokenCache:
    """Cached :meth:`TokenStore.lookup` for one process; see the module's text for the bound.

    Args:
        store: the token store the lookups go to.
        ttl_ms: longest time an entry is used (0: no cache).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self, store: TokenStore, ttl_ms: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl_s = ttl_ms / 1000
        self._clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}
        # Bumped on every drop, so a read that raced with one is not cached.
        self._generation = 0
        self._lock = threading.Lock()
        self._pubsub: Any = None
        self._confirmed = False
        self._retry_at = 0.0

    def lookup(self, token: str) -> Principal | None:
        """The token's principal, or None if it is unknown, revoked or malformed.

        Raises:
            LedgerUnavailable: Redis failed while the token had to be read.
        """
        if not self.ttl_s:
            return self.store.lookup(token)
        digest = self.store.digest(token)
        if digest is None:
            return None
        self._drain()
        now = self._clock()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        principal = self.store.lookup_digest(digest)
        with self._lock:
            if principal is None:
                self._entries.pop(digest, None)
            elif generation == self._generation:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                # From ``now``, taken before the read was sent: never later than the bound.
                self._entries[digest] = (now + self.ttl_s, principal)
        return principal

    @property
    def subscribed(self) -> bool:
        """Whether the channel is read and Redis has confirmed the subscription."""
        return self._pubsub is not None and self._confirmed

    def clear(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self._entries.clear()
        self._generation += 1

    def _drain(self) -> None:
        """Apply what arrived on the channel; subscribe first when there is no subscription."""
        if self._pubsub is None and self._clock() >= self._retry_at:
            self._subscribe()
        if self._pubsub is None:
            return
        with self._lock:
            # Read again under the lock: another thread may have lost it meanwhile.
            pubsub = self._pubsub
            if pubsub is None:
                return
            try:
                while True:
                    message = pubsub.get_message(timeout=0.0)
                    if message is None:
                        return
                    kind = message.get("type")
                    if kind in ("message", "subscribe"):
                        self._confirmed = True
                        self._drop()
            except Exception as exc:  # noqa: BLE001 - any failure: the bound alone holds
                self._lost(exc)

    def _subscribe(self) -> None:
        with self._lock:
            if self._pubsub is not None:
                return
            pubsub = None
            try:
                pubsub = self.store.redis.pubsub()
                pubsub.subscribe(self.store.channel)
            except Exception as exc:  # noqa: BLE001
                if pubsub is not None:
                    _close(pubsub)
                self._retry_at = self._clock() + RESUBSCRIBE_S
                log.warning("token revocations channel unavailable (%s); cache bound only", exc)
                return
            self._pubsub = pubsub
            self._confirmed = False

    def _lost(self, exc: Exception) -> None:
        """The channel failed: forget it and everything cached while it was trusted."""
        log.warning("token revocations channel lost (%s); cache bound only until it is back", exc)
        _close(self._pubsub)
        self._pubsub = None
        self._confirmed = False
        self._retry_at = self._clock() + RESUBSCRIBE_S
        self._drop()

    def close(self) -> None:
        with self._lock:
            if self._pubsub is not None:
                _close(self._pubsub)
                self._pubsub = None


def _close(pubsub: Any) -> None:
    # Closing a broken connection may fail too.
    with contextlib.suppress(Exception):
        pubsub.close()
