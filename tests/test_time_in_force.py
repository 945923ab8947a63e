"""Time in force (FIX tag 59): due orders are released by the ledger itself, at the exact
millisecond of server time, audited and published; bounded work per decision."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgpack
import pytest
import redis

from ledger import Ledger, Order, Reason, parse_policy
from ledger.policy.lifecycle import EXPIRE_PER_DECISION, format_ms
from ledger.store.scripts import lua_dir
from tests.fakeclock.plugin import Clock
from tests.helpers import TIGHT, exposure, order

#: 2031-05-16 12:00:00 UTC: a Friday, far from any DST change.
T0 = int(datetime(2031, 5, 16, 12, tzinfo=UTC).timestamp() * 1000)


def doc(**top: Any) -> dict[str, Any]:
    d = copy.deepcopy(TIGHT)
    # Room for many open orders: the tests here are about time, not limits.
    d["firms"][0]["desks"][0]["limits"] = {"max_gross_notional": "50000"}
    d["strategies"][0].pop("limits")
    d.update(top)
    return d


def load(lg: Ledger, **top: Any) -> None:
    lg.load_policy(parse_policy(doc(**top), source="tif"), by="test")


def tif_order(order_id: str, tif: str, expire: Any = None, **fields: Any) -> Order:
    o = order(order_id, **fields)
    return Order(
        o.order_id,
        o.trader,
        o.strategy,
        o.account,
        o.symbol,
        o.side,
        o.qty,
        o.price,
        time_in_force=tif,
        expire_time=expire,
    )


def state(lg: Ledger, order_id: str) -> tuple[str | None, str | None]:
    st, why = lg.redis.hmget(lg.keys.order("F1", order_id), "st", "why")
    return (st.decode() if st else None, why.decode() if why else None)


def expiries(lg: Ledger) -> list[dict[str, Any]]:
    out = []
    for _id, fields in lg.redis.xrange(lg.keys.audit("F1")):
        rec = msgpack.unpackb(fields[b"m"], raw=False)
        if rec.get("by") == "system:expiry":
            out.append(rec)
    return out


def iso(ms: int) -> str:
    return format_ms(ms)


def test_gtd_expires_at_exactly_its_expire_time(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    assert lg.reserve(tif_order("g1", "GTD", iso(T0 + 1000))).accepted
    before = exposure(lg)
    clock.set_ms(T0 + 999)
    assert lg.reserve(order("n1", qty="1")).accepted
    assert state(lg, "g1") == ("open", None)
    clock.set_ms(T0 + 1000)
    assert lg.reserve(order("n2", qty="1")).accepted
    assert state(lg, "g1") == ("released", "expired")
    (rec,) = expiries(lg)
    assert (rec["op"], rec["order_id"], rec["why"], rec["released"], rec["tif"]) == (
        "release",
        "g1",
        "expired",
        100_000,
        "GTD",
    )
    assert lg.redis.zscore(lg.keys.expiry("F1"), lg.keys.order("F1", "g1")) is None
    assert exposure(lg) != before and lg.check().ok


def test_an_aware_datetime_and_its_iso_string_are_the_same_order(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    at = datetime(2031, 5, 16, 14, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=2)))
    assert lg.reserve(tif_order("g1", "GTD", at)).accepted
    # 14:00:00.250+02:00 is 12:00:00.250Z: the same fields, hence a replay.
    again = lg.reserve(tif_order("g1", "GTD", "2031-05-16T12:00:00.250Z"))
    assert again.replayed and again.accepted
    due = lg.redis.zscore(lg.keys.expiry("F1"), lg.keys.order("F1", "g1"))
    assert due == T0 + 250


def test_every_expiry_is_published_on_the_events_channel(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    assert lg.reserve(tif_order("g1", "GTD", iso(T0 + 10), qty="7")).accepted
    assert lg.fill("g1", "f1", "3", "100").ok
    pubsub = lg.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("ledger:events")
    pubsub.get_message(timeout=1)
    clock.set_ms(T0 + 10)
    assert lg.reserve(order("n1", qty="1")).accepted
    message = pubsub.get_message(timeout=2)
    pubsub.close()
    assert message is not None
    event = json.loads(message["data"])
    assert event == {
        "type": "expire",
        "firm": "F1",
        "by": "system:expiry",
        "reason": "expired",
        "at_ms": T0 + 10,
        "open_orders": ["g1"],
        "cancel_open": True,
        "cancels": [
            {
                "action": "cancel",
                "order_id": "g1",
                "account": "A1",
                "strategy": "S1",
                "trader": "T1",
                "symbol": "XYZ",
                "side": "buy",
                "leaves_qty": 4,
                "reason": "expired",
            }
        ],
    }


NY_SUMMER_ROLL = int(datetime(2031, 7, 15, 21, tzinfo=UTC).timestamp() * 1000)  # 17:00 EDT
NY_WINTER_ROLL = int(datetime(2031, 1, 15, 22, tzinfo=UTC).timestamp() * 1000)  # 17:00 EST


@pytest.mark.parametrize("roll", [NY_SUMMER_ROLL, NY_WINTER_ROLL], ids=["summer", "winter"])
def test_a_day_order_expires_at_the_firms_roll(clock: Clock, roll: int) -> None:
    lg = clock.ledger
    clock.set_ms(roll - 3 * 3_600_000)
    load(lg, trading_day={"rolls_at": "17:00", "zone": "America/New_York"})
    assert lg.reserve(order("d1")).accepted  # DAY: the default
    assert lg.reserve(tif_order("c1", "GTC")).accepted
    assert lg.redis.zscore(lg.keys.expiry("F1"), lg.keys.order("F1", "d1")) == roll
    clock.set_ms(roll - 1)
    assert lg.sweep() == {"F1": 0}
    assert state(lg, "d1") == ("open", None)
    clock.set_ms(roll)
    assert lg.sweep() == {"F1": 1}
    assert state(lg, "d1") == ("released", "expired")
    # GTC is never due.
    clock.set_ms(roll + 400 * 86_400_000)
    assert lg.sweep() == {"F1": 0}
    assert state(lg, "c1") == ("open", None)
    assert lg.check().ok


def test_a_day_order_reserved_after_the_roll_lives_until_the_next(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(NY_SUMMER_ROLL)
    load(lg, trading_day={"rolls_at": "17:00", "zone": "America/New_York"})
    assert lg.reserve(order("d1")).accepted
    due = lg.redis.zscore(lg.keys.expiry("F1"), lg.keys.order("F1", "d1"))
    assert due == NY_SUMMER_ROLL + 86_400_000


@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_ioc_and_fok_release_the_rest_at_the_first_fill(clock: Clock, tif: str) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    assert lg.reserve(tif_order("i1", tif, qty="10")).accepted
    fill = lg.fill("i1", "f1", "4", "100")
    assert (fill.ok, fill.leaves, fill.reserved) == (True, 6, 0)
    assert state(lg, "i1") == ("released", "expired")
    assert [r["order_id"] for r in expiries(lg)] == ["i1"]
    # A later fill of the same order is still exposure, and its fill id still deduplicated.
    assert lg.fill("i1", "f2", "1", "100").ok
    assert lg.fill("i1", "f2", "1", "100").duplicate
    assert lg.check().ok
    # A full first fill simply fills it.
    assert lg.reserve(tif_order("i2", tif, qty="10")).accepted
    assert lg.fill("i2", "f1", "10", "100").ok
    assert state(lg, "i2") == ("filled", None)
    assert lg.redis.zcard(lg.keys.expiry("F1")) == 0
    assert lg.check().ok


def test_an_ioc_without_an_execution_report_expires_after_the_grace(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg, time_in_force={"ioc_grace": "2s"})
    assert lg.reserve(tif_order("i1", "IOC")).accepted
    clock.set_ms(T0 + 1999)
    assert lg.sweep() == {"F1": 0}
    clock.set_ms(T0 + 2000)
    assert lg.sweep() == {"F1": 1}
    assert state(lg, "i1") == ("released", "expired")


def test_one_decision_retires_a_bounded_number_the_sweep_the_rest(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    n = 3 * EXPIRE_PER_DECISION + 2
    for i in range(n):
        assert lg.reserve(tif_order(f"g{i}", "GTD", iso(T0 + 100 + i), qty="1")).accepted
    clock.set_ms(T0 + 1000)
    assert lg.reserve(order("n1", qty="1")).accepted
    assert len(expiries(lg)) == EXPIRE_PER_DECISION
    # The earliest due go first.
    assert [r["order_id"] for r in expiries(lg)] == [f"g{i}" for i in range(EXPIRE_PER_DECISION)]
    assert lg.sweep(batch=4) == {"F1": n - EXPIRE_PER_DECISION}
    assert len(expiries(lg)) == n
    assert all(state(lg, f"g{i}") == ("released", "expired") for i in range(n))
    # Left in the index: the DAY order n1, due at the roll.
    assert lg.redis.zrange(lg.keys.expiry("F1"), 0, -1) == [lg.keys.order("F1", "n1").encode()]
    assert lg.check().ok


def test_the_bound_is_the_same_in_lua_and_python() -> None:
    text = (lua_dir() / "includes" / "expiry.lua").read_text()
    match = re.search(r"^local EXPIRE_PER_CALL = (\d+)$", text, re.MULTILINE)
    assert match and int(match.group(1)) == EXPIRE_PER_DECISION


def test_a_replace_of_a_due_order_finds_it_closed(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    # More due orders than one call retires: the replaced one is last by due time.
    for i in range(EXPIRE_PER_DECISION):
        assert lg.reserve(tif_order(f"g{i}", "GTD", iso(T0 + 1 + i), qty="1")).accepted
    assert lg.reserve(tif_order("last", "GTD", iso(T0 + 50))).accepted
    clock.set_ms(T0 + 50)
    d = lg.replace("last", "20", "100")
    assert d.reason is Reason.ORDER_CLOSED
    assert state(lg, "last") == ("released", "expired")
    assert lg.check().ok


def test_replace_keeps_or_changes_the_time_in_force(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    idx, key = lg.keys.expiry("F1"), lg.keys.order("F1", "g1")
    assert lg.reserve(tif_order("g1", "GTD", iso(T0 + 5000))).accepted
    # No time in force: kept, with its due time.
    assert lg.replace("g1", "20", "100").accepted
    assert lg.redis.zscore(idx, key) == T0 + 5000
    # GTD with a new expire time.
    assert lg.replace("g1", "20", "100", time_in_force="GTD", expire_time=iso(T0 + 9000)).accepted
    assert lg.redis.zscore(idx, key) == T0 + 9000
    # GTC: never due.
    assert lg.replace("g1", "20", "100", time_in_force="GTC").accepted
    assert lg.redis.zscore(idx, key) is None
    assert lg.redis.hget(key, "tif") == b"GTC"
    # DAY: the next roll (UTC midnight by default).
    assert lg.replace("g1", "20", "100", time_in_force="DAY").accepted
    assert lg.redis.zscore(idx, key) == (T0 // 86_400_000 + 1) * 86_400_000
    assert lg.redis.hget(key, "tif") is None


def test_invalid_time_in_force_on_replace_changes_nothing(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    assert lg.reserve(tif_order("g1", "GTD", iso(T0 + 5000))).accepted
    assert lg.reserve(tif_order("i1", "IOC")).accepted
    before = exposure(lg), lg.redis.zrange(lg.keys.expiry("F1"), 0, -1, withscores=True)
    cases = [
        (
            "g1",
            {"time_in_force": "IOC"},
            "time_in_force: a replace takes DAY, GTC or GTD, got 'IOC'",
        ),
        ("g1", {"time_in_force": "GTD"}, "expire_time: is required with time_in_force GTD"),
        (
            "g1",
            {"time_in_force": "GTD", "expire_time": iso(T0)},
            "expire_time: must be after the ledger's time now; nothing changed",
        ),
        (
            "i1",
            {"time_in_force": "DAY"},
            "time_in_force: an IOC order keeps its time in force; nothing changed",
        ),
    ]
    for order_id, fields, message in cases:
        d = lg.replace(order_id, "10", "100", **fields)
        assert (d.reason, d.message) == (Reason.INVALID_ORDER, message)
    assert (exposure(lg), lg.redis.zrange(lg.keys.expiry("F1"), 0, -1, withscores=True)) == before


@pytest.mark.parametrize(
    ("tif", "expire", "message"),
    [
        ("GFD", None, "time_in_force: must be DAY, GTC, GTD, IOC or FOK, got 'GFD'"),
        ("day", None, "time_in_force: must be DAY, GTC, GTD, IOC or FOK, got 'day'"),
        ("GTD", None, "expire_time: is required with time_in_force GTD"),
        ("DAY", "2031-05-16T13:00:00Z", "expire_time: is only for time_in_force GTD, not DAY"),
        (
            "GTD",
            "2031-05-16T13:00:00",
            "expire_time: must be an ISO 8601 time in UTC such as 2026-11-30T21:00:00Z, "
            "got '2031-05-16T13:00:00'",
        ),
        (
            "GTD",
            "2031-05-16T15:00:00+02:00",
            "expire_time: must be an ISO 8601 time in UTC such as 2026-11-30T21:00:00Z, "
            "got '2031-05-16T15:00:00+02:00'",
        ),
        (
            "GTD",
            datetime(2031, 5, 16, 13),
            "expire_time: must be an aware datetime (with tzinfo), in UTC",
        ),
        (
            "GTD",
            "2031-02-30T13:00:00Z",
            "expire_time: is not a real date and time: day is out of range for month",
        ),
    ],
)
def test_invalid_values_get_exact_messages_and_change_nothing(
    lg: Ledger, tif: str, expire: Any, message: str
) -> None:
    before = exposure(lg)
    d = lg.reserve(tif_order("x1", tif, expire))
    assert (d.accepted, d.reason, d.message) == (False, Reason.INVALID_ORDER, message)
    assert exposure(lg) == before
    assert not lg.redis.exists(lg.keys.order("F1", "x1"))


def test_a_gtd_already_due_by_server_time_is_refused_not_remembered(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    before = exposure(lg)
    d = lg.reserve(tif_order("g1", "GTD", iso(T0)))
    assert (d.reason, d.message, d.used, d.requested) == (
        Reason.INVALID_ORDER,
        "expire_time: must be after the ledger's time now; nothing changed",
        T0,
        T0,
    )
    assert exposure(lg) == before and not lg.redis.exists(lg.keys.order("F1", "g1"))
    # Not remembered: the id is free for the corrected order.
    assert lg.reserve(tif_order("g1", "GTD", iso(T0 + 1))).accepted


def test_basket_legs_carry_their_time_in_force(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    legs = [tif_order("b1", "GTD", iso(T0 + 100)), tif_order("b2", "GTC"), order("b3")]
    assert lg.reserve_basket(legs, basket_id="B1").accepted
    idx = lg.keys.expiry("F1")
    assert lg.redis.zscore(idx, lg.keys.order("F1", "b1")) == T0 + 100
    assert lg.redis.zscore(idx, lg.keys.order("F1", "b2")) is None
    assert lg.redis.zscore(idx, lg.keys.order("F1", "b3")) == (T0 // 86_400_000 + 1) * 86_400_000
    # A basket replays only with the same fields, time in force included.
    clash = lg.reserve_basket(
        [tif_order("b1", "GTC"), tif_order("b2", "GTC"), order("b3")], basket_id="B1"
    )
    assert clash.reason is Reason.DUPLICATE_ORDER_ID
    clock.set_ms(T0 + 100)
    assert lg.sweep() == {"F1": 1}
    assert state(lg, "b1") == ("released", "expired")


def test_a_policy_of_every_firm_without_orders_sweeps_to_nothing(lg: Ledger) -> None:
    assert lg.sweep() == {"F1": 0}
    with pytest.raises(ValueError, match="batch: must be 1 to 10000, got 0"):
        lg.sweep(batch=0)


def test_sweep_by_firm_only_touches_that_firm(redis_client: redis.Redis) -> None:
    lg = Ledger(redis_client, actor="test")
    load(lg)
    assert lg.sweep(firm="F1") == {"F1": 0}


def test_each_call_reads_the_grace_of_the_policy_in_force(clock: Clock) -> None:
    # The scripts run as one function library whose locals outlive a call: a grace
    # read for one call must not be the grace of the next (a new load changed it).
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg, time_in_force={"ioc_grace": "5s"})
    assert lg.reserve(tif_order("i1", "IOC")).accepted
    load(lg, time_in_force={"ioc_grace": "1s"})
    assert lg.reserve(tif_order("i2", "IOC")).accepted
    due = lg.redis.zscore(lg.keys.expiry("F1"), lg.keys.order("F1", "i2"))
    assert due == T0 + 1000
    assert lg.redis.zscore(lg.keys.expiry("F1"), lg.keys.order("F1", "i1")) == T0 + 5000
