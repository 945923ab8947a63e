"""``ledger sweep``: due orders released on demand, text and JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ledger.cli import cli
from tests.fakeclock.plugin import Clock
from tests.test_time_in_force import T0, iso, load, tif_order


def test_sweep_releases_what_is_due_and_says_how_many(clock: Clock) -> None:
    lg = clock.ledger
    clock.set_ms(T0)
    load(lg)
    for i in range(3):
        assert lg.reserve(tif_order(f"g{i}", "GTD", iso(T0 + 10 * (i + 1)), qty="1")).accepted
    clock.set_ms(T0 + 20)
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})
    url = clock.server.url
    result = runner.invoke(cli, ["--redis-url", url, "sweep", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"firms": {"F1": 2}, "expired": 2}
    clock.set_ms(T0 + 30)
    result = runner.invoke(cli, ["--redis-url", url, "sweep", "--firm", "F1"])
    assert (result.exit_code, result.stdout) == (0, "F1: 1 expired order released\n")
    result = runner.invoke(cli, ["--redis-url", url, "sweep", "--batch", "0"])
    assert result.exit_code == 1
    assert "--batch" in result.output
