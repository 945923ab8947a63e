"""Order-flow controls: the duplicate-order guard, the cancel-to-new ratio, the fill
throttle, and the state of strategies and accounts (policy ``state`` and runtime
``lg.states``).

Every reject is checked to leave the reservations exactly as they were
(``exposure``), and accepted steps to keep aggregates and positions equal to
the sums over orders (``lg.check()``).
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger import Ledger, Reason
from ledger.errors import ReenableRefused
from tests.fakeclock.plugin import Clock
from tests.helpers import (
    accepted,
    controls_doc,
    controls_node,
    exposure,
    load_controls,
    order,
    refused,
)

#: 2031-11-17T04:26:40.123Z: far from the real date, with a millisecond part.
T0 = 1_952_656_000_123


def duplicate_ttl(lg: Ledger, key: str) -> int:
    return int(lg.redis.pttl(lg.keys.duplicate("F1", key)))


# -- duplicate-order guard ---------------------------------------------------------------


def test_same_fields_within_the_window_are_refused(lg):
    doc = controls_doc()
    controls_node(doc, "account:A1")["limits"]["duplicate_window_ms"] = 60_000
    load_controls(lg, doc)
    accepted(lg, order("o1", qty="10", price="100"))
    assert 0 < duplicate_ttl(lg, "A1|XYZ|buy|10|100") <= 60_000
    d = refused(lg, order("o2", qty="10", price="100"), Reason.DUPLICATE_ORDER, "account:A1")
    assert (d.limit, d.used, d.requested, d.notional) == (60_000, 0, 0, 100_000)
    # The same price spelt differently is the same price.
    refused(lg, order("o3", qty="10", price="100.00"), Reason.DUPLICATE_ORDER, "account:A1")
    # Any one field different is another order.
    accepted(lg, order("o4", qty="11", price="100"))
    accepted(lg, order("o5", qty="10", price="100.01"))
    accepted(lg, order("o6", qty="10", price="100", side="sell"))
    accepted(lg, order("o7", qty="10", price="50", symbol="ABC"))
    accepted(lg, order("o8", qty="10", price="100", account="A2"))
    # A2 sets no window: its repeat is not guarded.
    accepted(lg, order("o9", qty="10", price="100", account="A2"))


def test_a_retry_with_the_same_order_id_replays(lg):
    doc = controls_doc()
    controls_node(doc, "account:A1")["limits"]["duplicate_window_ms"] = 60_000
    load_controls(lg, doc)
    first = accepted(lg, order("o1"))
    before = exposure(lg)
    again = lg.reserve(order("o1"))
    assert (again.accepted, again.reason, again.replayed) == (True, Reason.OK, True)
    assert again.notional == first.notional
    assert exposure(lg) == before
    # The refused duplicate replays its own answer too.
    refused(lg, order("o2"), Reason.DUPLICATE_ORDER, "account:A1")
    retry = lg.reserve(order("o2"))
    assert (retry.reason, retry.replayed) == (Reason.DUPLICATE_ORDER, True)


def test_only_an_accepted_order_arms_the_guard(lg):
    doc = controls_doc()
    controls_node(doc, "account:A1")["limits"]["duplicate_window_ms"] = 60_000
    load_controls(lg, doc)
    refused(lg, order("o1", price="102"), Reason.PRICE_COLLAR, "tier:mid")
    assert duplicate_ttl(lg, "A1|XYZ|buy|10|102") == -2
    lg.prices.set({"XYZ": "102"}, by="feed")
    accepted(lg, order("o2", price="102"))


def test_the_guard_lapses_after_its_window(clock: Clock):
    lg = clock.ledger
    doc = controls_doc()
    controls_node(doc, "account:A1")["limits"]["duplicate_window_ms"] = 200
    clock.set_ms(T0)
    load_controls(lg, doc)
    accepted(lg, order("o1"))
    clock.set_ms(T0 + 199)
    refused(lg, order("o2"), Reason.DUPLICATE_ORDER, "account:A1")
    clock.set_ms(T0 + 201)
    accepted(lg, order("o3"))
    # ... and is armed again by the order it let through.
    refused(lg, order("o4"), Reason.DUPLICATE_ORDER, "account:A1")


def test_the_longest_window_on_the_path_decides(clock: Clock):
    lg = clock.ledger
    doc = controls_doc()
    controls_node(doc, "account:A1")["limits"]["duplicate_window_ms"] = 1000
    controls_node(doc, "strategy:S1")["limits"]["duplicate_window_ms"] = 5000
    clock.set_ms(T0)
    load_controls(lg, doc)
    accepted(lg, order("o1"))
    clock.set_ms(T0 + 1001)
    d = refused(lg, order("o2"), Reason.DUPLICATE_ORDER, "strategy:S1")
    assert d.limit == 5000
    clock.set_ms(T0 + 4999)
    refused(lg, order("o3"), Reason.DUPLICATE_ORDER, "strategy:S1")
    clock.set_ms(T0 + 5001)
    accepted(lg, order("o4"))


# -- cancel-to-new ratio -----------------------------------------------------------------


def cancel(lg: Ledger, order_id: str, times: int = 1) -> None:
    for _ in range(times):
        d = lg.cancel_request(order_id)
        # A cancel is never refused by the ratio, however far over it is.
        assert (d.accepted, d.reason) == (True, Reason.OK), d


def ratio_doc() -> dict[str, Any]:
    doc = controls_doc()
    controls_node(doc, "strategy:S1")["limits"]["cancel_to_new"] = {
        "max_ratio": "2",
        "window_s": 60,
        "min_messages": 6,
    }
    return doc


def test_cancel_ratio_edge(lg):
    load_controls(lg, ratio_doc())
    accepted(lg, order("o1"))
    cancel(lg, "o1", 3)
    # 1 new, 3 cancels: over the ratio, but only 4 of the 6 messages it waits for.
    accepted(lg, order("o2", qty="11"))
    cancel(lg, "o1")
    # 2 new, 4 cancels: exactly at the ratio.
    accepted(lg, order("o3", qty="12"))
    cancel(lg, "o2", 2)
    # 3 new, 6 cancels: at the ratio again; one cancel more is over it.
    cancel(lg, "o2")
    d = refused(lg, order("o4", qty="13"), Reason.CANCEL_RATIO, "strategy:S1")
    assert (d.limit, d.used, d.requested) == (200, 7, 3)
    cancel(lg, "o3", 2)
    # A refused new order is not counted: still 3 new.
    d = refused(lg, order("o5", qty="14"), Reason.CANCEL_RATIO, "strategy:S1")
    assert (d.used, d.requested) == (9, 3)
    # Other strategies are not held by S1's ratio.
    accepted(lg, order("o6", trader="T2", strategy="S2", account="A3"))


def test_cancel_ratio_does_not_hold_replaces_or_releases(lg):
    load_controls(lg, ratio_doc())
    accepted(lg, order("o1"))
    accepted(lg, order("o2", qty="11"))
    cancel(lg, "o1", 5)
    refused(lg, order("o3", qty="12"), Reason.CANCEL_RATIO, "strategy:S1")
    d = lg.replace("o2", "12", "100")
    assert d.accepted and lg.check().ok
    assert lg.release("o1", "cancel confirmed").ok
    assert lg.check().ok


def test_cancel_ratio_window_rolls(clock: Clock):
    lg = clock.ledger
    clock.set_ms(T0)
    load_controls(lg, ratio_doc())
    accepted(lg, order("o1"))
    accepted(lg, order("o2", qty="11"))
    cancel(lg, "o1", 5)
    refused(lg, order("o3", qty="12"), Reason.CANCEL_RATIO, "strategy:S1")
    # The ring may keep one bucket (a tenth of the window) longer than the window.
    clock.set_ms(T0 + 66_000)
    lg.prices.set({"XYZ": "100"}, by="feed")
    accepted(lg, order("o4", qty="12"))


# -- fill throttle -----------------------------------------------------------------------


def throttle_doc() -> dict[str, Any]:
    doc = controls_doc()
    controls_node(doc, "strategy:S1")["limits"]["fill_throttle"] = {
        "trigger_count": 3,
        "window_s": 10,
    }
    return doc


def fill(lg: Ledger, order_id: str, fill_id: str) -> Any:
    result = lg.fill(order_id, fill_id, "1", "100")
    assert result.ok and not result.duplicate
    return result


def test_fill_throttle_disables_the_strategy_one_fill_past_its_trigger(lg):
    load_controls(lg, throttle_doc())
    accepted(lg, order("o1", qty="10"))
    for n in range(1, 4):
        assert not fill(lg, "o1", f"f{n}").disabled_strategy
    # A fill id seen before is not a new execution.
    assert lg.fill("o1", "f3", "1", "100").duplicate
    accepted(lg, order("o2", qty="11"))
    tripped = fill(lg, "o1", "f4")
    assert tripped.disabled_strategy and tripped.cum_qty == 4
    d = refused(lg, order("o3", qty="12"), Reason.STRATEGY_DISABLED, "strategy:S1")
    assert (d.limit, d.used, d.requested) == (None, None, None)
    # Fills are still recorded; the strategy is disabled once, by one record.
    later = fill(lg, "o1", "f5")
    assert not later.disabled_strategy and later.cum_qty == 5
    assert lg.check().ok
    records = [r for r in lg.audit_tail(200) if r["op"] == "state_disable"]
    assert len(records) == 1
    (rec,) = records
    assert {k: rec[k] for k in ("scope", "by", "auto", "order_id", "fill", "code")} == {
        "scope": "strategy:S1",
        "by": "system:fill-throttle",
        "auto": 1,
        "order_id": "o1",
        "fill": "f4",
        "code": "OK",
    }
    assert rec["cause"] == "4 fills within 10 s (trigger 3)"
    (state,) = lg.states.list()
    assert (state.scope, state.state, state.source, state.auto) == (
        "strategy:S1",
        "disabled",
        "runtime",
        True,
    )
    # Other strategies trade on.
    accepted(lg, order("o4", trader="T2", strategy="S2", account="A3"))


def test_only_a_person_re_enables_a_throttled_strategy(lg):
    load_controls(lg, throttle_doc())
    accepted(lg, order("o1", qty="10"))
    for n in range(1, 5):
        fill(lg, "o1", f"f{n}")
    with pytest.raises(ReenableRefused):
        lg.states.enable("strategy:S1", by="system:fill-throttle", reason="self-heal")
    refused(lg, order("o2"), Reason.STRATEGY_DISABLED, "strategy:S1")
    lg.states.enable("strategy:S1", by="ops-alice", reason="fills checked with the venue")
    accepted(lg, order("o3"))


def test_fill_throttle_disables_a_strategy_that_ops_made_reduce_only(lg):
    load_controls(lg, throttle_doc())
    accepted(lg, order("o1", qty="10"))
    lg.states.set("strategy:S1", "reduce_only", by="ops-alice", reason="unwind")
    for n in range(1, 4):
        assert not fill(lg, "o1", f"f{n}").disabled_strategy
    # 4 long now: a sell of 1 shrinks it, which reduce-only alone would let through.
    assert fill(lg, "o1", "f4").disabled_strategy
    refused(lg, order("o2", qty="1", side="sell"), Reason.STRATEGY_DISABLED, "strategy:S1")
    (state,) = lg.states.list()
    assert (state.state, state.by, state.auto) == ("disabled", "system:fill-throttle", True)


def test_fill_throttle_counts_within_its_window(clock: Clock):
    lg = clock.ledger
    clock.set_ms(T0)
    load_controls(lg, throttle_doc())
    accepted(lg, order("o1", qty="20"))
    for n in range(1, 4):
        fill(lg, "o1", f"a{n}")
    # Window plus the one bucket the ring may keep longer.
    clock.set_ms(T0 + 11_000)
    for n in range(1, 4):
        assert not fill(lg, "o1", f"b{n}").disabled_strategy
    assert fill(lg, "o1", "b4").disabled_strategy


# -- strategy and account state ----------------------------------------------------------


@pytest.mark.parametrize("scope", ["strategy:S1", "account:A1"])
def test_policy_disabled_node_refuses_new_orders(lg, scope):
    doc = controls_doc()
    controls_node(doc, scope)["state"] = "disabled"
    load_controls(lg, doc)
    d = refused(lg, order("o1"), Reason.STRATEGY_DISABLED, scope)
    assert d.notional == 0
    # The same trader through an enabled node of the other kind still trades.
    accepted(lg, order("o2", trader="T2", strategy="S2", account="A3"))
    if scope == "account:A1":
        accepted(lg, order("o3", account="A2"))


def test_a_disabled_strategy_is_named_before_a_disabled_account(lg):
    doc = controls_doc()
    controls_node(doc, "strategy:S1")["state"] = "disabled"
    controls_node(doc, "account:A1")["state"] = "disabled"
    load_controls(lg, doc)
    refused(lg, order("o1"), Reason.STRATEGY_DISABLED, "strategy:S1")


def test_disabled_comes_before_the_price_controls(lg):
    # README "Decision order": entitlement and tier (3), then state (4), then halt,
    # reference price and collar (5).
    doc = controls_doc()
    controls_node(doc, "strategy:S1")["state"] = "disabled"
    load_controls(lg, doc, {"AAPL": "200"})
    refused(lg, order("o1"), Reason.STRATEGY_DISABLED, "strategy:S1")
    lg.prices.set({"XYZ": "100"}, by="feed")
    refused(lg, order("o2", price="500"), Reason.STRATEGY_DISABLED, "strategy:S1")
    lg.prices.set({"XYZ": "200"}, by="feed")
    refused(lg, order("o3"), Reason.STRATEGY_DISABLED, "strategy:S1")
    refused(lg, order("o4", symbol="ZZZ"), Reason.UNKNOWN_SYMBOL, "symbol:ZZZ")


@pytest.mark.parametrize("scope", ["strategy:S1", "account:A1"])
def test_runtime_disable_and_enable(lg, scope):
    load_controls(lg, controls_doc())
    accepted(lg, order("o1"))
    lg.states.set(scope, "disabled", by="ops-alice", reason="runaway")
    refused(lg, order("o2"), Reason.STRATEGY_DISABLED, scope)
    # Replace is refused; cancel, fill and release of open orders are not.
    before = exposure(lg)
    d = lg.replace("o1", "12", "100")
    assert (d.reason, d.scope) == (Reason.STRATEGY_DISABLED, scope)
    assert exposure(lg) == before
    assert lg.cancel_request("o1").accepted
    assert lg.fill("o1", "f1", "4", "100").ok
    assert lg.release("o1", "cancel confirmed").ok
    assert lg.check().ok
    lg.states.enable(scope, by="ops-bob", reason="fixed")
    accepted(lg, order("o3"))


def test_a_runtime_state_wins_over_the_policy_state(lg):
    load_controls(lg, controls_doc())
    accepted(lg, order("o1"))
    assert lg.fill("o1", "f1", "10", "100").ok
    doc = controls_doc()
    controls_node(doc, "strategy:S1")["state"] = "disabled"
    load_controls(lg, doc)
    refused(lg, order("o2", side="sell"), Reason.STRATEGY_DISABLED, "strategy:S1")
    # Reduce-only set by ops replaces the policy's disabled: a closing order passes.
    lg.states.set("strategy:S1", "reduce_only", by="ops-alice", reason="unwind")
    refused(lg, order("o3", side="buy"), Reason.REDUCE_ONLY, "strategy:S1")
    accepted(lg, order("o4", side="sell"))
