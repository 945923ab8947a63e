"""Type aliases shared by the modules that talk to Redis."""

from __future__ import annotations

from typing import Any, TypeAlias

#: A redis-py ``Redis`` or ``RedisCluster``. redis-py annotates every command
#: as returning ``T | Awaitable[T]`` (one stub serves its sync and asyncio
#: clients), which a strict checker cannot narrow; the ledger only uses the
#: synchronous clients.
RedisClient: TypeAlias = Any
