"""Durable acknowledgement at its former path; the module is :mod:`ledger.store.durable`."""

from ledger.store.durable import (
    ENV_VARS,
    Durability,
    DurableWrites,
    NotDurable,
    env_message,
    from_env,
)

__all__ = ["Durability", "DurableWrites", "NotDurable", "ENV_VARS", "from_env", "env_message"]
