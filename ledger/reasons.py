"""Reason codes: the one table shared by Python and the Lua scripts.

The script loader (:mod:`ledger.store.scripts`) injects this table into every Lua
script as ``R``, with a metatable that raises on any name not listed here, so
a script can only ever return a code that Python knows. ``tests/test_reasons.py``
also checks every ``R.NAME`` spelled in ``lua/`` against this table.

Codes are part of the public contract (gateways, dashboards and audit readers
match on them): add new ones, never rename or reuse one.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason", "REJECT_REASONS"]


class Reason(StrEnum):
    """Why a decision came out the way it did."""

    #: The order was accepted (and reserved).
    OK = "OK"
    #: A kill switch is active at some scope on the order's path.
    KILL_SWITCH = "KILL_SWITCH"
    #: The trader or strategy is not entitled to the account (or trader to strategy).
    NOT_ENTITLED = "NOT_ENTITLED"
    #: A node the order needs (trader, strategy, account, desk, firm) is not in the policy.
    UNKNOWN_NODE = "UNKNOWN_NODE"
    #: Malformed, negative, zero, non-exact or out-of-range input; nothing was changed.
    INVALID_ORDER = "INVALID_ORDER"
    #: The order id was used before with different fields.
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
    #: Order quantity above a node's ``max_order_qty``.
    MAX_ORDER_QTY = "MAX_ORDER_QTY"
    #: Order notional above a node's ``max_order_notional``.
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    #: Open plus filled notional would exceed a node's ``max_gross_notional``.
    GROSS_LIMIT = "GROSS_LIMIT"
    #: Worst-case net notional would exceed a node's ``max_net_notional``.
    NET_LIMIT = "NET_LIMIT"
    #: Open order count would exceed a node's ``max_open_orders``.
    OPEN_ORDERS_LIMIT = "OPEN_ORDERS_LIMIT"
    #: A message window (per second / per 10 s, all or per type) is full.
    MESSAGE_RATE = "MESSAGE_RATE"
    #: The ledger could not be reached or answered an error: fail closed.
    RISK_UNAVAILABLE = "RISK_UNAVAILABLE"
    #: No policy has been loaded for the order's firm.
    NO_POLICY = "NO_POLICY"
    #: The order id is not known to the ledger (replace, cancel, fill, release).
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    #: The order is no longer open (replace or cancel of a closed order).
    ORDER_CLOSED = "ORDER_CLOSED"
    #: The policy changed under the caller's cached routing; the caller refreshes and retries.
    ROUTING_STALE = "ROUTING_STALE"
    #: The strategy or account is disabled (by policy, by ops, or by the fill throttle).
    STRATEGY_DISABLED = "STRATEGY_DISABLED"
    #: The strategy or account is reduce-only and the order does not shrink its position.
    REDUCE_ONLY = "REDUCE_ONLY"
    #: The policy has symbol tiers and the order's symbol is in none of them.
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    #: The symbol is halted (its reference price jumped); ops must resume it.
    SYMBOL_HALTED = "SYMBOL_HALTED"
    #: No reference price for the symbol, or one older than ``max_age_ms``.
    REFERENCE_PRICE_STALE = "REFERENCE_PRICE_STALE"
    #: Order price further from the reference price than the tier's collar.
    PRICE_COLLAR = "PRICE_COLLAR"
    #: Same account, symbol, side, qty and price within the duplicate window.
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    #: Worst-case net notional in one symbol would exceed ``max_symbol_notional``.
    CONCENTRATION_LIMIT = "CONCENTRATION_LIMIT"
    #: The node's realized loss today reached ``max_daily_loss``; only reducing orders pass.
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    #: Cancels outnumber new orders beyond ``cancel_to_new.max_ratio`` in its window.
    CANCEL_RATIO = "CANCEL_RATIO"
    #: A basket's total notional through a node exceeds ``max_basket_notional``.
    BASKET_LIMIT = "BASKET_LIMIT"
    #: A re-enable (unkill, strategy or account enable) without a reason, by a ``system:``
    #: identity, or by the identity of the automatic trigger that set it; nothing changed.
    REENABLE_REFUSED = "REENABLE_REFUSED"


#: Every code that means "no".
REJECT_REASONS = frozenset(r for r in Reason if r is not Reason.OK)
