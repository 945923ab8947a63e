"""Kill and unkill events (and token revocations) on a Redis pub/sub channel.

Every kill or unkill that goes through a gateway is published on
``P:events`` (``ledger:events`` by default) as one JSON object::

    {"type": "kill", "scope": "desk:EQ-CASH", "by": "ops-alice", "reason": "...",
     "at_ms": 1700000000000, "already": false, "open_orders": ["o1", "o2"],
     "instance": "gateway@host:1234"}

so that a running order gateway can cancel at the venue the open orders it
routed. A kill asked for with ``cancel_open`` also carries ``"cancel_open": true``
and ``"cancels"``: one instruction per order still open, each
``{"action": "cancel", "order_id", "account", "strategy", "trader", "symbol",
"side", "leaves_qty"}``; an instance sends those it routed to its venue sessions.
The ledger itself publishes on the same channel each time it releases orders
whose time in force ran out (lua/includes/expiry.lua), one event per script
call: ``{"type": "expire", "firm", "by": "system:expiry", "reason": "expired",
"at_ms", "open_orders": [...], "cancel_open": true, "cancels": [...]}``, each
cancel as above plus ``"reason": "expired"``, so an instance cancels them at
the venue as it does a kill's.
The kill itself does not depend on the event: every decision reads the kill
switches in Redis, so the next order on any instance is refused even if no
one listens. (``redis-cli SUBSCRIBE ledger:events`` shows the stream.)

The same channel carries ``{"type": "token_revoked", "name", "at_ms"}``,
published by :meth:`ledger.tokens.TokenStore.revoke`; every gateway worker
reads the channel and drops its token cache on any message
(:mod:`gateway.token_cache`). Consumers of kill events read ``type``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import redis

__all__ = ["channel", "publish", "listen"]

log = logging.getLogger(__name__)


def channel(prefix: str) -> str:
    return f"{prefix}:events"


def publish(client: redis.Redis, prefix: str, event: dict[str, Any]) -> int | None:
    """Publish ``event``; the number of subscribers that got it, or None if Redis failed.

    A failure here does not undo the kill, which is already in force.
    """
    try:
        delivered = client.publish(channel(prefix), json.dumps(event, sort_keys=True))
        return int(delivered)  # type: ignore[arg-type]
    except redis.RedisError as exc:
        log.warning("kill event for %s not published: %s", event.get("scope"), exc)
        return None


def listen(client: redis.Redis, prefix: str, timeout_s: float) -> Iterator[dict[str, Any]]:
    """Events as they arrive, until ``timeout_s`` passes without one."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(channel(prefix))
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None and message["type"] == "message":
                yield json.loads(message["data"])
                deadline = time.monotonic() + timeout_s
    finally:
        pubsub.close()
