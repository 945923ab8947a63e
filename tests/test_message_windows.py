"""Message windows of any length: per_minute, per_hour and duration keys such as ``5s``, on
the same rings as per_second (11 buckets of W/10: at most W/10 early, never late, 13 numbers
per window whatever the rate), run on the test clock."""

from __future__ import annotations

from ledger import Reason
from ledger.facade.views import unpack_node
from ledger.store.policy_store import ring_id
from tests.fakeclock.plugin import Clock
from tests.helpers import accepted, controls_doc, controls_node, load_controls, order, refused

HOUR = 3_600_000
#: On a bucket boundary of the hour window (6 min buckets).
T0 = 1_800_000_000_000


def usage(lg, scope: str, name: str) -> tuple[int, int]:
    (row,) = [r for r in lg.utilization(scope) if r.scope == scope and r.limit_name == name]
    return row.used, row.limit


def test_a_one_hour_window_refuses_at_most_a_tenth_early_and_never_late(clock: Clock):
    lg = clock.ledger
    doc = controls_doc(tiers=False)
    controls_node(doc, "strategy:S1")["limits"]["messages"] = {"per_hour": 3}
    clock.set_ms(T0)
    load_controls(lg, doc)
    for i in range(3):
        accepted(lg, order(f"o{i}", qty=str(i + 1)))
    d = refused(lg, order("o3", qty="9"), Reason.MESSAGE_RATE, "strategy:S1")
    assert (d.limit, d.used) == (3, 3)
    assert usage(lg, "strategy:S1", "messages.all.per_hour") == (3, 3)
    # Never late: a minute before the hour is up, still full.
    clock.set_ms(T0 + HOUR - 60_000)
    refused(lg, order("o4", qty="9"), Reason.MESSAGE_RATE, "strategy:S1")
    # At most W/10 early: the oldest bucket counts until a tenth of an hour after.
    clock.set_ms(T0 + HOUR + HOUR // 10 - 1)
    refused(lg, order("o5", qty="9"), Reason.MESSAGE_RATE, "strategy:S1")
    clock.set_ms(T0 + HOUR + HOUR // 10)
    assert usage(lg, "strategy:S1", "messages.all.per_hour") == (0, 3)
    accepted(lg, order("o6", qty="9"))


def test_a_duration_key_window_counts_its_message_type(clock: Clock):
    lg = clock.ledger
    doc = controls_doc(tiers=False)
    controls_node(doc, "strategy:S1")["limits"]["messages"] = {"new": {"5s": 2}, "per_minute": 50}
    clock.set_ms(T0)
    load_controls(lg, doc)
    accepted(lg, order("o1", qty="1"))
    accepted(lg, order("o2", qty="2"))
    d = refused(lg, order("o3", qty="3"), Reason.MESSAGE_RATE, "strategy:S1")
    assert d.limit == 2
    # Replaces are another type: the 5 s window of new orders does not count them.
    assert lg.replace("o1", "4", "100").accepted
    assert usage(lg, "strategy:S1", "messages.new.5s") == (2, 2)
    assert usage(lg, "strategy:S1", "messages.all.per_minute") == (3, 50)
    clock.set_ms(T0 + 5_500)
    accepted(lg, order("o4", qty="5"))


def test_memory_stays_one_ring_per_window_whatever_the_rate(clock: Clock):
    lg = clock.ledger
    doc = controls_doc(tiers=False)
    controls_node(doc, "strategy:S1")["limits"]["messages"] = {"per_hour": 10_000}
    clock.set_ms(T0)
    load_controls(lg, doc)
    for i in range(40):
        clock.set_ms(T0 + i * 200_000)
        accepted(lg, order(f"o{i}", qty=str(i + 1)))
        assert lg.release(f"o{i}", "cancel confirmed").ok
    _, rings = unpack_node(lg.redis.hget(lg.keys.agg("F1"), "strategy:S1"))
    ring = rings[ring_id("all", HOUR)]
    # head, total, then 11 buckets; 40 messages over 2.2 hours, the last hour's counted.
    assert len(ring) == 13
    assert usage(lg, "strategy:S1", "messages.all.per_hour")[0] == ring[1] <= 20
