"""Retention: closed orders are deleted after retention.closed_orders, open ones are kept;
what a retired order's id and fill ids answer then."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import Ledger, Reason
from tests.fakeclock.plugin import Clock
from tests.helpers import order
from tests.test_time_in_force import T0, iso, load, tif_order

HOUR = 3_600_000


def ttl(lg: Ledger, order_id: str) -> int:
    return int(lg.redis.pttl(lg.keys.order("F1", order_id)))


def closed_three_ways(lg: Ledger) -> None:
    assert lg.reserve(order("filled")).accepted
    assert lg.fill("filled", "f1", "10", "100").ok
    assert lg.reserve(order("released")).accepted
    assert lg.release("released", "cancelled").ok
    assert lg.reserve(tif_order("expired", "GTD", iso(T0 + 1))).accepted


def test_closed_orders_expire_after_the_retention_open_ones_stay(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg, retention={"closed_orders": "2h"})
    closed_three_ways(lg)
    assert lg.reserve(tif_order("open", "GTC")).accepted
    assert lg.reserve(order("partial")).accepted
    assert lg.fill("partial", "p1", "4", "100").ok
    clock.set_ms(T0 + 1)
    assert lg.sweep() == {"F1": 1}
    for closed in ("filled", "released", "expired"):
        assert ttl(lg, closed) == 2 * HOUR - (0 if closed == "expired" else 1)
    assert ttl(lg, "open") == -1 and ttl(lg, "partial") == -1
    clock.set_ms(T0 + 2 * HOUR + 2)
    for closed in ("filled", "released", "expired"):
        assert not lg.redis.exists(lg.keys.order("F1", closed))
    assert lg.redis.exists(lg.keys.order("F1", "open"), lg.keys.order("F1", "partial")) == 2
    # Open sums still equal the open orders'; the node keeps the deleted orders' fills.
    report = lg.check()
    assert report.ok, report.breaches
    assert report.orders == 2


def test_a_retired_orders_id_and_fill_ids(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg, retention={"closed_orders": "1h"})
    assert lg.reserve(order("o1")).accepted
    assert lg.fill("o1", "f1", "10", "100").ok
    # Within the retention: the id replays as closed, the fill id is deduplicated.
    clock.set_ms(T0 + HOUR)
    replay = lg.reserve(order("o1"))
    assert (replay.replayed, replay.reason, replay.state) == (True, Reason.ORDER_CLOSED, "filled")
    assert lg.fill("o1", "f1", "10", "100").duplicate
    # After it: the order is gone. A fill for it is an unknown order; a reserve
    # under the id is a new order, decided afresh.
    clock.set_ms(T0 + HOUR + 1)
    assert lg.fill("o1", "f1", "10", "100").reason is Reason.UNKNOWN_ORDER
    again = lg.reserve(order("o1"))
    assert (again.accepted, again.replayed, again.state) == (True, False, "open")
    assert lg.check().ok


def test_a_later_fill_on_a_closed_order_keeps_its_retention(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg, retention={"closed_orders": "1h"})
    assert lg.reserve(order("o1")).accepted
    assert lg.release("o1", "cancelled").ok
    clock.set_ms(T0 + 1000)
    # A fill after the cancel is still exposure; it does not make the order live again.
    assert lg.fill("o1", "late", "2", "100").ok
    assert ttl(lg, "o1") == HOUR - 1000


def test_rejected_ids_keep_their_own_shorter_ttl(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg, retention={"closed_orders": "2d"})
    lg.reject_ttl_ms = 60_000
    d = lg.reserve(order("r1", qty="5000"))
    assert d.reason is Reason.MAX_ORDER_QTY
    assert ttl(lg, "r1") == 60_000


@pytest.mark.parametrize(
    ("spec", "expected"), [({}, 3 * 24 * HOUR), ({"closed_orders": "never"}, -1)]
)
def test_the_default_retention_and_never(clock: Clock, spec: dict[str, Any], expected: int) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg, retention=spec)
    assert lg.reserve(order("o1")).accepted
    assert lg.release("o1", "cancelled").ok
    assert ttl(lg, "o1") == expected


def test_retention_read_when_the_order_closes(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg, retention={"closed_orders": "1h"})
    assert lg.reserve(order("o1")).accepted
    load(lg, retention={"closed_orders": "2h"})
    assert lg.release("o1", "cancelled").ok
    assert ttl(lg, "o1") == 2 * HOUR
