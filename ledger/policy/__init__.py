"""The policy layer: the limit model, its parsing and offline checks (no Redis).

``from ledger.policy import Policy, parse_policy`` keeps working: the model's names are
gathered here from :mod:`ledger.policy.model`.
"""

from ledger.policy.model import (
    COUNT_LIMITS,
    KINDS,
    LIMIT_NAMES,
    MESSAGE_TYPES,
    MONEY_LIMITS,
    Limits,
    MessageLimits,
    Node,
    Policy,
    load_policy_file,
    parse_policy,
)

__all__ = [
    "KINDS",
    "MESSAGE_TYPES",
    "MONEY_LIMITS",
    "COUNT_LIMITS",
    "LIMIT_NAMES",
    "MessageLimits",
    "Limits",
    "Node",
    "Policy",
    "load_policy_file",
    "parse_policy",
]
