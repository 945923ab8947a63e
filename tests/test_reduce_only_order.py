"""An order's own reduce-only flag (FIX ExecInst E): it must shrink the position at every
node of its path, on the new order and on each replace; the strategy's or account's
reduce-only state is another control (tests/test_controls_exposure.py)."""

from __future__ import annotations

import dataclasses

from ledger import Ledger, Order, Reason
from tests.helpers import accepted, controls_doc, exposure, load_controls, order, refused


def ro(order_id: str, qty: str = "10", side: str = "sell", account: str = "A1") -> Order:
    return dataclasses.replace(
        order(order_id, qty=qty, side=side, account=account), reduce_only=True
    )


def filled(lg: Ledger, order_id: str, side: str, qty: str, account: str = "A1") -> None:
    accepted(lg, order(order_id, qty=qty, side=side, account=account))
    assert lg.fill(order_id, f"{order_id}-f", qty, "100").ok


def test_without_a_position_a_reduce_only_order_is_refused_at_the_firm(lg):
    load_controls(lg, controls_doc(tiers=False))
    before = exposure(lg)
    for i, side in enumerate(("buy", "sell")):
        d = refused(lg, ro(f"o{i}", side=side), Reason.REDUCE_ONLY, "firm:F1")
        assert (d.used, d.requested, d.notional) == (0, 10, 100_000)
    assert exposure(lg) == before
    # Unflagged, the same order passes: the flag is the order's, not the strategy's.
    accepted(lg, order("o9", side="sell"))


def test_closing_exactly_passes_one_unit_past_flat_does_not(lg):
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", "buy", "10")
    d = refused(lg, ro("o2", qty="11"), Reason.REDUCE_ONLY, "firm:F1")
    assert (d.used, d.requested) == (10, 11)
    refused(lg, ro("o3", qty="1", side="buy"), Reason.REDUCE_ONLY, "firm:F1")
    accepted(lg, ro("o4", qty="6"))
    # Open closing orders count as filled: 6 + 4 closes, 6 + 5 would flip.
    refused(lg, ro("o5", qty="5"), Reason.REDUCE_ONLY, "firm:F1")
    accepted(lg, ro("o6", qty="4"))
    assert lg.redis.hget(lg.keys.order("F1", "o6"), "ro") == b"1"
    assert lg.check().ok


def test_a_node_further_down_the_path_decides(lg):
    # A2 is long 10, so firm, desk, strategy and trader are long; A1 holds nothing.
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", "buy", "10", account="A2")
    d = refused(lg, ro("o2", qty="5", account="A1"), Reason.REDUCE_ONLY, "account:A1")
    assert (d.used, d.requested) == (0, 5)
    accepted(lg, ro("o3", qty="5", account="A2"))


def test_the_flag_is_part_of_the_order_id_fingerprint(lg):
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", "buy", "10")
    accepted(lg, ro("o2", qty="5"))
    again = lg.reserve(ro("o2", qty="5"))
    assert again.accepted and again.replayed
    unflagged = lg.reserve(order("o2", qty="5", side="sell"))
    assert unflagged.reason is Reason.DUPLICATE_ORDER_ID


def test_a_flag_that_is_not_a_bool_is_invalid_and_changes_nothing(lg):
    load_controls(lg, controls_doc(tiers=False))
    before = exposure(lg)
    bad = dataclasses.replace(order("o1"), reduce_only="yes")  # type: ignore[arg-type]
    d = lg.reserve(bad)
    assert (d.reason, d.message) == (Reason.INVALID_ORDER, "reduce_only: must be true or false")
    d = lg.replace("o1", "10", "100", reduce_only=1)  # type: ignore[arg-type]
    assert (d.reason, d.message) == (Reason.INVALID_ORDER, "reduce_only: must be true or false")
    assert exposure(lg) == before


def test_replace_of_a_flagged_order_may_not_grow_the_position(lg):
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", "buy", "10")
    accepted(lg, ro("o2", qty="8"))
    before = exposure(lg)
    d = lg.replace("o2", "11", "100")
    assert (d.reason, d.scope, d.used, d.requested) == (Reason.REDUCE_ONLY, "firm:F1", 10, 11)
    assert exposure(lg) == before
    assert lg.replace("o2", "10", "100").accepted
    assert lg.replace("o2", "3", "100").accepted
    assert lg.check().ok


def test_replace_can_flag_an_order_and_the_flag_stays(lg):
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", "buy", "10")
    accepted(lg, order("o2", qty="12", side="sell"))
    d = lg.replace("o2", "12", "100", reduce_only=True)
    assert (d.reason, d.scope) == (Reason.REDUCE_ONLY, "firm:F1")
    # Refused, so not flagged: an unflagged replace may still grow it.
    assert lg.redis.hget(lg.keys.order("F1", "o2"), "ro") is None
    assert lg.replace("o2", "10", "100", reduce_only=True).accepted
    assert lg.redis.hget(lg.keys.order("F1", "o2"), "ro") == b"1"
    d = lg.replace("o2", "11", "100")
    assert (d.reason, d.scope) == (Reason.REDUCE_ONLY, "firm:F1")


def test_a_basket_leg_may_be_reduce_only(lg):
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", "buy", "10")
    before = exposure(lg)
    b = lg.reserve_basket([ro("b1", qty="6"), ro("b2", qty="5")], basket_id="B1")
    assert (b.reason, b.leg, b.legs[1].scope) == (Reason.REDUCE_ONLY, 2, "firm:F1")
    assert exposure(lg) == before
    b = lg.reserve_basket([ro("b3", qty="6"), ro("b4", qty="4")], basket_id="B2")
    assert b.accepted
