"""Position controls: reduce-only, concentration in one symbol, and the daily loss.

They read the positions hash (per node and symbol: open and filled notional,
open qty per side, signed filled qty) and the day's realized P&L in the node
state. Every reject is checked to leave the reservations exactly as they were
(``exposure``), and accepted steps to keep aggregates and positions equal to
the sums over orders (``lg.check()``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest

from ledger import Ledger, Reason
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


def utc_ms(*fields: int) -> int:
    return int(datetime(*fields, tzinfo=UTC).timestamp() * 1000)


#: 17:00 in New York, in UTC: on daylight time (UTC-4) in May, standard (UTC-5) in November.
NY_ROLLS = [utc_ms(2031, 5, 16, 21, 0), utc_ms(2031, 11, 17, 22, 0)]


def position(lg: Ledger, scope: str, symbol: str = "XYZ") -> list[int]:
    raw = lg.redis.hget(lg.keys.positions("F1"), f"{scope}|{symbol}")
    return list(msgpack.unpackb(raw)) if raw is not None else [0] * 7


def filled(lg: Ledger, order_id: str, side: str, qty: str, pnl: str | None = None) -> None:
    """Reserve and completely fill an order of ``qty`` XYZ at 100."""
    accepted(lg, order(order_id, qty=qty, side=side))
    assert lg.fill(order_id, f"{order_id}-f", qty, "100", pnl=pnl).ok
    assert lg.check().ok


# -- reduce-only -------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["strategy:S1", "account:A1"])
@pytest.mark.parametrize(
    ("held", "closing", "adding"), [("buy", "sell", "buy"), ("sell", "buy", "sell")]
)
def test_reduce_only_allows_exactly_closing_the_position(lg, scope, held, closing, adding):
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", held, "10")
    doc = controls_doc(tiers=False)
    controls_node(doc, scope)["state"] = "reduce_only"
    load_controls(lg, doc)
    signed = 10 if held == "buy" else -10
    # One unit past flat is refused: used is the signed position, requested the qty.
    d = refused(lg, order("o2", qty="11", side=closing), Reason.REDUCE_ONLY, scope)
    assert (d.used, d.requested, d.notional) == (signed, 11, 110_000)
    refused(lg, order("o3", qty="1", side=adding), Reason.REDUCE_ONLY, scope)
    accepted(lg, order("o4", qty="10", side=closing))
    # The open closing order counts as if filled: nothing more may close.
    d = refused(lg, order("o5", qty="1", side=closing), Reason.REDUCE_ONLY, scope)
    assert (d.used, d.requested) == (signed, 1)
    # Once it is gone, two orders may share the close, but not go past it.
    assert lg.release("o4", "cancel confirmed").ok
    accepted(lg, order("o6", qty="4", side=closing))
    accepted(lg, order("o7", qty="6", side=closing))
    refused(lg, order("o8", qty="1", side=closing), Reason.REDUCE_ONLY, scope)


def test_reduce_only_without_a_position_refuses_both_sides(lg):
    doc = controls_doc(tiers=False)
    controls_node(doc, "account:A1")["state"] = "reduce_only"
    load_controls(lg, doc)
    for i, side in enumerate(("buy", "sell")):
        d = refused(lg, order(f"o{i}", side=side), Reason.REDUCE_ONLY, "account:A1")
        assert (d.used, d.requested) == (0, 10)
    # The position is per symbol and per node: A2 is not reduce-only.
    accepted(lg, order("o9", account="A2"))


def test_runtime_reduce_only_and_a_partly_filled_close(lg):
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", "buy", "10")
    lg.states.set("strategy:S1", "reduce_only", by="ops-alice", reason="unwind")
    accepted(lg, order("o2", qty="10", side="sell"))
    assert lg.fill("o2", "f1", "3", "100").ok
    # 7 long, 7 still offered: flat if all fills.
    assert position(lg, "strategy:S1")[5:] == [7, 7]
    refused(lg, order("o3", qty="1", side="sell"), Reason.REDUCE_ONLY, "strategy:S1")
    lg.states.enable("strategy:S1", by="ops-bob", reason="unwound")
    accepted(lg, order("o4", qty="1", side="sell"))


def test_replace_under_reduce_only_may_shrink_but_not_grow(lg):
    load_controls(lg, controls_doc(tiers=False))
    filled(lg, "o1", "buy", "10")
    accepted(lg, order("o2", qty="8", side="sell"))
    lg.states.set("account:A1", "reduce_only", by="ops-alice", reason="unwind")
    before = exposure(lg)
    fields = lg.redis.hmget(lg.keys.order("F1", "o2"), "qty", "res")
    d = lg.replace("o2", "9", "100")
    assert (d.accepted, d.reason, d.scope, d.used, d.requested) == (
        False,
        Reason.REDUCE_ONLY,
        "account:A1",
        8,
        9,
    )
    assert exposure(lg) == before
    assert lg.redis.hmget(lg.keys.order("F1", "o2"), "qty", "res") == fields
    # A new price at the same qty, or a smaller qty, adds nothing.
    assert lg.replace("o2", "8", "100.50").accepted
    d = lg.replace("o2", "7", "100")
    assert d.accepted and d.notional == 70_000
    assert position(lg, "account:A1")[5:] == [7, 10]
    assert lg.check().ok


# -- concentration -----------------------------------------------------------------------


def test_account_concentration_edge(lg):
    doc = controls_doc(tiers=False)
    controls_node(doc, "account:A1")["limits"]["max_symbol_notional"] = "5000"
    load_controls(lg, doc)
    accepted(lg, order("o1", qty="40"))
    # 4000.00 + 1000.00: exactly at the limit.
    accepted(lg, order("o2", qty="10"))
    d = refused(lg, order("o3", qty="1", price="0.01"), Reason.CONCENTRATION_LIMIT, "account:A1")
    assert (d.limit, d.used, d.requested) == (500_000, 500_000, 1)
    # Per symbol: ABC starts from nothing.
    accepted(lg, order("o4", qty="50", symbol="ABC"))
    # An order against the position does not worsen it and is never blocked.
    accepted(lg, order("o5", qty="30", side="sell"))
    # But one that turns it into a larger short is.
    d = refused(lg, order("o6", qty="21", side="sell"), Reason.CONCENTRATION_LIMIT, "account:A1")
    assert (d.used, d.requested) == (500_000, 10_000)


def test_concentration_counts_fills(lg):
    doc = controls_doc(tiers=False)
    controls_node(doc, "account:A1")["limits"]["max_symbol_notional"] = "5000"
    load_controls(lg, doc)
    filled(lg, "o1", "buy", "30")
    accepted(lg, order("o2", qty="20"))
    refused(lg, order("o3", qty="1", price="0.01"), Reason.CONCENTRATION_LIMIT, "account:A1")
    # A sell that fills brings the position back under the limit.
    filled(lg, "o4", "sell", "5")
    accepted(lg, order("o5", qty="5"))


def test_desk_concentration_sums_its_accounts(lg):
    doc = controls_doc(tiers=False)
    controls_node(doc, "desk:D1")["limits"]["max_symbol_notional"] = "8000"
    load_controls(lg, doc)
    accepted(lg, order("o1", qty="50"))
    accepted(lg, order("o2", qty="30", account="A2"))
    d = refused(
        lg, order("o3", qty="1", price="0.01", account="A2"), Reason.CONCENTRATION_LIMIT, "desk:D1"
    )
    assert (d.limit, d.used, d.requested) == (800_000, 800_000, 1)
    # Another desk's account is not in D1's sum.
    accepted(lg, order("o4", qty="50", trader="T2", strategy="S2", account="A3"))
    accepted(lg, order("o5", qty="20", side="sell", account="A2"))


def test_replace_rechecks_concentration(lg):
    doc = controls_doc(tiers=False)
    controls_node(doc, "account:A1")["limits"]["max_symbol_notional"] = "5000"
    load_controls(lg, doc)
    accepted(lg, order("o1", qty="50"))
    before = exposure(lg)
    d = lg.replace("o1", "50", "100.01")
    assert (d.reason, d.scope, d.used, d.requested) == (
        Reason.CONCENTRATION_LIMIT,
        "account:A1",
        500_000,
        50,
    )
    assert exposure(lg) == before
    assert lg.replace("o1", "49", "100").accepted
    assert lg.check().ok


# -- daily loss --------------------------------------------------------------------------


def loss_doc(**trading_day: str) -> dict[str, Any]:
    doc = controls_doc(tiers=False)
    controls_node(doc, "account:A1")["limits"]["max_daily_loss"] = "100"
    if trading_day:
        doc["trading_day"] = trading_day
    return doc


def test_daily_loss_edge(lg):
    load_controls(lg, loss_doc())
    filled(lg, "o1", "buy", "10", pnl="-99.99")
    # One minor unit under the limit: still trading.
    accepted(lg, order("o2", qty="1"))
    assert lg.fill("o2", "f2", "1", "100", pnl="-0.01").ok
    d = refused(lg, order("o3", qty="2"), Reason.DAILY_LOSS_LIMIT, "account:A1")
    assert (d.limit, d.used, d.requested) == (10_000, 10_000, 20_000)
    # At the limit only orders that shrink the position pass: 11 long here.
    accepted(lg, order("o4", qty="11", side="sell"))
    refused(lg, order("o5", qty="1", side="sell"), Reason.DAILY_LOSS_LIMIT, "account:A1")
    refused(lg, order("o6", qty="1", symbol="ABC"), Reason.DAILY_LOSS_LIMIT, "account:A1")
    # Other accounts have no loss limit of their own.
    accepted(lg, order("o7", qty="1", account="A2"))
    # A profit brings the loss back under the limit.
    assert lg.fill("o4", "f4", "1", "100", pnl="0.01").ok
    accepted(lg, order("o8", qty="1"))


def test_daily_loss_limit_is_held_on_every_node_of_the_path(lg):
    doc = controls_doc(tiers=False)
    controls_node(doc, "desk:D1")["limits"]["max_daily_loss"] = "50"
    load_controls(lg, doc)
    # The loss of A1's fill counts for the desk, which holds A2 back too.
    filled(lg, "o1", "buy", "10", pnl="-50")
    d = refused(lg, order("o2", account="A2"), Reason.DAILY_LOSS_LIMIT, "desk:D1")
    assert (d.limit, d.used) == (5_000, 5_000)
    accepted(lg, order("o3", trader="T2", strategy="S2", account="A3"))


def test_replace_that_grows_is_held_by_the_daily_loss(lg):
    load_controls(lg, loss_doc())
    accepted(lg, order("o1", qty="5"))
    filled(lg, "o2", "buy", "10", pnl="-100")
    before = exposure(lg)
    d = lg.replace("o1", "6", "100")
    assert (d.reason, d.scope, d.used) == (Reason.DAILY_LOSS_LIMIT, "account:A1", 10_000)
    assert exposure(lg) == before
    assert lg.replace("o1", "4", "100").accepted
    assert lg.check().ok


def node_day(lg: Ledger, scope: str) -> tuple[int, int]:
    """``(day id, realized P&L)`` stored in the node's aggregate."""
    values = msgpack.unpackb(lg.redis.hget(lg.keys.agg("F1"), scope), strict_map_key=False)
    return values[6], values[7]


def test_the_loss_of_another_day_reads_as_zero(lg):
    load_controls(lg, loss_doc())
    filled(lg, "o1", "buy", "10", pnl="-100")
    refused(lg, order("o2"), Reason.DAILY_LOSS_LIMIT, "account:A1")
    day, pnl = node_day(lg, "account:A1")
    assert pnl == -10_000
    # The same stored loss, booked to yesterday.
    key = lg.keys.agg("F1")
    values = msgpack.unpackb(lg.redis.hget(key, "account:A1"), strict_map_key=False)
    values[6] = day - 1
    lg.redis.hset(key, "account:A1", msgpack.packb(values))
    accepted(lg, order("o3"))
    # Today's first loss starts from zero, not from yesterday's.
    assert lg.fill("o3", "f3", "10", "100", pnl="-99.99").ok
    assert node_day(lg, "account:A1") == (day, -9_999)
    accepted(lg, order("o4"))


@pytest.mark.parametrize("roll", NY_ROLLS)
def test_the_day_rolls_at_the_policy_time_in_its_zone(clock: Clock, roll: int):
    lg = clock.ledger
    # One ms before 17:00 New York time: still the day of the loss.
    clock.set_ms(roll - 1)
    load_controls(lg, loss_doc(rolls_at="17:00", zone="America/New_York"))
    accepted(lg, order("open", qty="5"))
    filled(lg, "o1", "buy", "10", pnl="-100")
    refused(lg, order("o2"), Reason.DAILY_LOSS_LIMIT, "account:A1")
    before = node_day(lg, "account:A1")
    reserved = exposure(lg)
    clock.set_ms(roll)
    # The roll itself writes nothing: open orders stay reserved as they were.
    assert exposure(lg) == reserved and lg.check().ok
    accepted(lg, order("o3"))
    assert lg.fill("o3", "f3", "10", "100", pnl="-99.99").ok
    assert node_day(lg, "account:A1") == (before[0] + 1, -9_999)
    accepted(lg, order("o4"))
    assert lg.fill("o4", "f4", "10", "100", pnl="-0.01").ok
    refused(lg, order("o5"), Reason.DAILY_LOSS_LIMIT, "account:A1")
    assert lg.fill("open", "f-open", "5", "100").ok
    assert lg.check().ok


def test_the_day_does_not_roll_at_utc_midnight_for_a_new_york_day(clock: Clock):
    lg = clock.ledger
    # 19:59:59.999 and 20:00 in New York (EDT), within one trading day.
    midnight = utc_ms(2031, 5, 17, 0, 0)
    clock.set_ms(midnight - 1)
    load_controls(lg, loss_doc(rolls_at="17:00", zone="America/New_York"))
    filled(lg, "o1", "buy", "10", pnl="-100")
    clock.set_ms(midnight)
    refused(lg, order("o2"), Reason.DAILY_LOSS_LIMIT, "account:A1")
