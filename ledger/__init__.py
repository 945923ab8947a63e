"""Limit Ledger: a Redis-backed distributed pre-trade risk ledger.

>>> from ledger import Ledger, Order
>>> lg = Ledger.from_url("redis://127.0.0.1:6379/0")          # doctest: +SKIP
>>> lg.reserve(Order(order_id="o1", trader="T-ALICE", strategy="MM-1", account="ACC-1",
...                  symbol="AAPL", side="buy", qty="100", price="187.25"))  # doctest: +SKIP
"""

from __future__ import annotations

from ledger.errors import (
    InvalidInput,
    LedgerError,
    LedgerUnavailable,
    PolicyError,
    ReenableRefused,
    UnknownScope,
)
from ledger.facade.client import Ledger
from ledger.facade.order import Order
from ledger.facade.results import (
    Breach,
    Decision,
    FillResult,
    Kill,
    KillResult,
    ReleaseResult,
    UtilizationRow,
)
from ledger.policy.model import Policy, load_policy_file, parse_policy
from ledger.reasons import REJECT_REASONS, Reason

__all__ = [
    "Ledger",
    "Order",
    "Decision",
    "Breach",
    "FillResult",
    "ReleaseResult",
    "KillResult",
    "Kill",
    "UtilizationRow",
    "Reason",
    "REJECT_REASONS",
    "Policy",
    "load_policy_file",
    "parse_policy",
    "LedgerError",
    "LedgerUnavailable",
    "InvalidInput",
    "PolicyError",
    "UnknownScope",
    "ReenableRefused",
]
