"""Ledger.reserve_many: one round trip for a batch, the same decisions as one by one."""

from __future__ import annotations

import copy

from ledger import Ledger, Reason
from ledger.facade.views import aggregates
from tests.helpers import TIGHT, load, order


def batch():
    orders = [order(f"o{i}", qty=str(50 + i * 37), price="100", account="A2") for i in range(8)]
    orders += [
        order("o3", qty=str(50 + 3 * 37), price="100", account="A2"),  # replay
        order("o3", qty="1", price="1", account="A2"),  # duplicate id
        order("bad", qty="-1"),  # invalid
        order("nowhere", account="A9"),  # unknown account
        order("ne", trader="T2", strategy="S1", account="A3"),  # not entitled
    ]
    return orders


def as_tuple(d):
    return (d.order_id, d.accepted, d.reason, d.scope, d.limit, d.used, d.requested, d.replayed)


def test_a_batch_decides_exactly_as_the_same_orders_one_by_one(redis_client):
    lg = Ledger(redis_client, actor="test")
    load(lg)
    together = [as_tuple(d) for d in lg.reserve_many(batch())]
    state_together = aggregates(redis_client, lg.keys, "F1")
    redis_client.flushall()
    lg = Ledger(redis_client, actor="test")
    load(lg)
    one_by_one = [as_tuple(lg.reserve(o)) for o in batch()]
    assert together == one_by_one
    assert aggregates(redis_client, lg.keys, "F1") == state_together
    reasons = {t[2] for t in together}
    assert {
        Reason.OK,
        Reason.GROSS_LIMIT,
        Reason.DUPLICATE_ORDER_ID,
        Reason.INVALID_ORDER,
        Reason.UNKNOWN_NODE,
        Reason.NOT_ENTITLED,
    } <= reasons


def test_a_batch_with_stale_routing_is_decided_on_the_new_policy(redis_client):
    lg = Ledger(redis_client)
    load(lg)
    assert lg.reserve(order("warm")).accepted  # caches A1 -> D1
    doc = copy.deepcopy(TIGHT)
    desks = doc["firms"][0]["desks"]
    desks[1]["accounts"].append(desks[0]["accounts"].pop(0))  # A1 moves to D2
    load(Ledger(redis_client), doc)
    decisions = lg.reserve_many([order("b1"), order("b2")])
    assert [d.accepted for d in decisions] == [True, True]
    assert aggregates(redis_client, lg.keys, "F1")["desk:D2"].n == 2
