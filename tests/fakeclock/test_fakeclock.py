"""The fake clock moves a real server's TIME exactly, for commands, scripts and expiry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakeclock.plugin import Clock, _start, build_shim

#: 2031-05-17T04:26:40.123Z: far from the real date, with a millisecond part.
T0 = 1_952_656_000_123
SCRIPT_NOW = (
    "local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"
)


def test_frozen_time_is_exact_for_commands_and_scripts(clock: Clock) -> None:
    for t in (T0, T0 + 1, T0 + 999, T0 + 1000, T0 - 86_400_000, T0 + 7):
        clock.set_ms(t)
        # The very next command and every later one, until the next change.
        assert [clock.now_ms() for _ in range(5)] == [t] * 5
        assert clock.redis.eval(SCRIPT_NOW, 0) == t
        seconds, micros = clock.redis.time()
        assert seconds == t // 1000 and micros // 1000 == t % 1000


def test_frozen_time_stays_put_while_real_time_passes(clock: Clock) -> None:
    clock.set_ms(T0)
    time.sleep(0.05)
    assert clock.now_ms() == T0
    clock.advance_ms(250)
    assert clock.now_ms() == T0 + 250


def test_running_clock_moves_on_from_the_offset(clock: Clock) -> None:
    clock.run_from_ms(T0)
    first = clock.now_ms()
    assert T0 <= first < T0 + 10_000  # generous: a busy machine may stall
    time.sleep(0.03)
    later = clock.now_ms()
    assert later - first >= 25
    clock.advance_ms(-86_400_000)
    assert clock.now_ms() < T0 - 86_300_000


def test_real_time_again_after_reset(clock: Clock) -> None:
    clock.set_ms(T0)
    clock.real()
    assert abs(clock.now_ms() - time.time_ns() // 1_000_000) < 10_000


def test_expiry_follows_the_server_clock(clock: Clock) -> None:
    clock.set_ms(T0)
    clock.redis.set("k", "v", px=1000)
    clock.set_ms(T0 + 999)
    assert clock.redis.get("k") == b"v"
    clock.set_ms(T0 + 1001)
    assert clock.redis.get("k") is None


def test_a_garbled_control_file_means_real_time(clock: Clock, tmp_path: Path) -> None:
    clock.set_ms(T0)
    clock.server.control.write_text("freeze soon\n")
    time.sleep(0.002)
    assert abs(clock.now_ms() - time.time_ns() // 1_000_000) < 10_000


def test_missing_compiler_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"needs a C compiler.*`cc` is not on PATH"):
        build_shim(tmp_path)


def test_a_broken_compiler_fails_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "/bin/false")
    with pytest.raises(pytest.fail.Exception, match="compiling .*fakeclock.c with /bin/false"):
        build_shim(tmp_path)


def test_a_server_that_cannot_start_fails_the_test(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="did not start"):
        _start("redis", "/bin/false", tmp_path / "none.so", tmp_path)
