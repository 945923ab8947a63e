"""The trading day: Python's and the scripts' day numbers agree, across DST and the roll."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import msgpack
import pytest
import redis

from ledger.policy.controls import TradingDay
from ledger.store.scripts import lua_dir

NY = ZoneInfo("America/New_York")


def ms(zone: ZoneInfo, *parts: int) -> int:
    return int(datetime(*parts, tzinfo=zone).timestamp() * 1000)


def lua_day(client: redis.Redis, day: TradingDay, anchor_ms: int, now_ms: int) -> int:
    text = (lua_dir() / "includes" / "day.lua").read_text()
    meta = msgpack.packb({"r": day.roll_ms, "s": day.segments(anchor_ms)})
    script = text + "\nreturn day_of(ARGV[1], tonumber(ARGV[2]))"
    return int(client.eval(script, 0, meta, now_ms))


@pytest.mark.parametrize(
    "local",
    [
        (2026, 11, 20, 16, 59),  # a minute before the roll, EST
        (2026, 11, 20, 17, 0),  # the roll itself
        (2026, 3, 7, 17, 0),  # the evening before DST starts
        (2026, 3, 8, 16, 59),  # DST began at 02:00 that morning
        (2026, 3, 8, 17, 0),
        (2026, 11, 1, 1, 30),  # the hour that happens twice
        (2026, 11, 1, 17, 0),
    ],
)
def test_scripts_and_python_agree_around_the_roll_and_dst(
    redis_client: redis.Redis, local: tuple[int, ...]
) -> None:
    day = TradingDay("17:00", "America/New_York")
    now = ms(NY, *local)
    anchor = ms(NY, 2026, 1, 1, 0, 0)
    assert lua_day(redis_client, day, anchor, now) == day.day_of(now)


def test_the_day_changes_exactly_at_the_local_roll_time(redis_client: redis.Redis) -> None:
    day = TradingDay("17:00", "America/New_York")
    anchor = ms(NY, 2026, 1, 1, 0, 0)
    for date in ((2026, 11, 20), (2026, 7, 15), (2026, 3, 8)):
        roll = ms(NY, *date, 17, 0)
        before = lua_day(redis_client, day, anchor, roll - 1)
        assert lua_day(redis_client, day, anchor, roll) == before + 1
        # A full day later it rolls once more: each trading day is one day long.
        nxt = ms(NY, date[0], date[1], date[2] + 1, 17, 0)
        assert lua_day(redis_client, day, anchor, nxt - 1) == before + 1


def test_default_day_is_utc_midnight(redis_client: redis.Redis) -> None:
    day = TradingDay()
    utc = ZoneInfo("UTC")
    midnight = ms(utc, 2026, 11, 21, 0, 0)
    assert lua_day(redis_client, day, midnight, midnight) == midnight // 86_400_000
    assert lua_day(redis_client, day, midnight, midnight - 1) == midnight // 86_400_000 - 1
