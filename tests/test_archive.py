"""The audit archive (ledger/audit/): segments, the hash chain, restarts, trimming,
``audit.require_archive``, verify and search, against the tests' real servers.

"Records written" is counted by Redis itself: ``entries-added`` of each stream
(every XADD ever, trimmed or not), so a lost or doubled line cannot hide.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from ledger import Ledger, Reason
from ledger.audit import (
    GLOBAL_NAME,
    Archiver,
    ArchiverBusy,
    register,
    search,
    segments,
    verify,
)
from ledger.cli import cli
from tests.fakeclock.plugin import Clock
from tests.helpers import TIGHT, load, order

ROOT = Path(__file__).resolve().parent.parent
STREAMS = ("ledger:audit", "ledger:{F1}:audit")


def _t2(order_id: str) -> Any:
    # Trader T2 has no message limit: every call is a decision of its own.
    return order(order_id, qty="1", price="1", trader="T2", strategy="S2", account="A3")


def added(client: redis.Redis) -> int:
    """Every record ever appended to the global and the firm stream."""
    total = 0
    for s in STREAMS:
        if client.exists(s):
            total += int(client.xinfo_stream(s)["entries-added"])
    return total


def lines(directory: Path) -> list[dict[str, Any]]:
    out = []
    for sdir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in segments(sdir):
            out += [json.loads(x) for x in _text(path).splitlines()]
    return out


def _text(path: Path) -> str:
    if path.name.endswith(".gz"):
        return gzip.decompress(path.read_bytes()).decode()
    return path.read_text()


def trade(lg: Ledger, n: int, prefix: str = "o") -> None:
    for i in range(n):
        oid = f"{prefix}{i}"
        assert lg.reserve(_t2(oid)).accepted
        lg.fill(oid, f"{oid}-f", qty="1", price="1")


def archive_all(client: redis.Redis, directory: Path) -> int:
    return Archiver(client, Ledger(client).keys, directory).run()


@pytest.fixture
def lg(redis_client: redis.Redis) -> Ledger:
    lg = Ledger(redis_client, actor="test")
    load(lg)
    return lg


# -- segments and the chain -------------------------------------------------------------


def test_every_decision_lands_in_segments_once(lg: Ledger, tmp_path: Path) -> None:
    trade(lg, 20)
    assert archive_all(lg.redis, tmp_path) == added(lg.redis)
    trade(lg, 5, prefix="p")
    lg.release("p0", reason="cancelled")
    archive_all(lg.redis, tmp_path)
    report = verify(tmp_path)
    assert report.ok and report.streams == 2
    assert report.records == added(lg.redis) == 1 + 1 + 2 * 25 + 1
    got = lines(tmp_path)
    ids = [(x["stream"], x["id"]) for x in got]
    assert len(set(ids)) == len(ids)
    stream_ids = {(s, e.decode()) for s in STREAMS for e, _ in lg.redis.xrange(s)}
    assert set(ids) == stream_ids
    fills = [x["record"] for x in got if x["record"]["op"] == "fill"]
    assert {f["order_id"] for f in fills} == {f"o{i}" for i in range(20)} | {
        f"p{i}" for i in range(5)
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["F1", GLOBAL_NAME]
    assert lg.archive_lag()[1].backlog == 0


def test_a_crash_between_write_and_ack_duplicates_nothing(lg: Ledger, tmp_path: Path) -> None:
    trade(lg, 10)

    class Crash(Exception):
        pass

    first = Archiver(lg.redis, lg.keys, tmp_path)
    ack = first._ack

    def crash(stream: str, ids: list[Any]) -> None:
        if stream == "ledger:{F1}:audit":
            raise Crash(stream)
        ack(stream, ids)

    first._ack = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        first.run()
    warnings: list[str] = []
    # Written and fsynced, never acknowledged: still pending in the group.
    assert len(lines(tmp_path)) == 1 + 21
    assert [x.backlog for x in lg.archive_lag()] == [0, 21]
    # And a torn last line, as a crash in the middle of a write leaves.
    seg = segments(tmp_path / "F1")[-1]
    data = seg.read_bytes()
    seg.write_bytes(data[: data.rindex(b"\n", 0, -1) + 40])
    trade(lg, 3, prefix="q")
    Archiver(lg.redis, lg.keys, tmp_path, warn=warnings.append).run()
    assert warnings == [
        "archiver: ledger:{F1}:audit: took over 21 unacknowledged entries: "
        "20 already in the archive, 1 written now"
    ]
    report = verify(tmp_path)
    assert report.ok, report.first_break
    assert report.records == added(lg.redis)
    assert [x["backlog"] for x in (s.to_dict() for s in lg.archive_lag())] == [0, 0]


def _archiver(url: str, directory: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "ledger.cli", "--redis-url", url, "audit", "archive"]
    cmd += ["--dir", str(directory), "--follow", "--interval", "0.01"]
    with (directory.parent / "archiver.log").open("ab") as log:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)


TRADER = """
import sys, redis
from ledger import Ledger, Order
lg = Ledger(redis.Redis.from_url(sys.argv[1]), actor="trader")
for i in range(int(sys.argv[2])):
    oid = f"k{i}"
    d = lg.reserve(Order(oid, "T2", "S2", "A3", "XYZ", "buy", "1", "1"))
    assert d.accepted, d
    lg.fill(oid, oid + "-f", qty="1", price="1")
"""


def _written(directory: Path) -> int:
    """Lines written so far (a line being written may be torn: count newlines only)."""
    sdir = directory / "F1"
    return sum(_text(p).count("\n") for p in segments(sdir)) if sdir.exists() else 0


def _wait_for(what: Any, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not what():
        if time.monotonic() > end:
            pytest.fail("timed out waiting")
        time.sleep(0.01)


def test_sigkilled_archiver_restarts_without_loss_or_duplicate(
    lg: Ledger, redis_url: str, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "archive"
    tmp_path.mkdir()
    started: list[subprocess.Popen[bytes]] = []
    trader = subprocess.Popen([sys.executable, "-c", TRADER, redis_url, "1500"], cwd=ROOT)
    try:
        for _round in range(3):
            before = _written(tmp_path)
            started.append(arch := _archiver(redis_url, tmp_path))
            # Kill it while it is busy: once it has written more since its start.
            _wait_for(lambda b=before: _written(tmp_path) > b + 20)
            arch.send_signal(signal.SIGKILL)
            arch.wait()
        assert trader.wait(timeout=120) == 0
        started.append(arch := _archiver(redis_url, tmp_path))
        _wait_for(lambda: all(x.backlog == 0 for x in lg.archive_lag()))
        # As `docker stop` does: a clean stop frees the lease.
        arch.send_signal(signal.SIGTERM)
        assert arch.wait(timeout=30) == 0
        assert not lg.redis.exists(lg.keys.archive_lease())
    finally:
        for p in [trader, *started]:
            if p.poll() is None:
                p.kill()
                p.wait()
    report = verify(tmp_path)
    assert report.ok, report.first_break
    assert report.records == added(lg.redis) == 1 + 1 + 2 * 1500
    ids = [(x["stream"], x["id"]) for x in lines(tmp_path)]
    assert len(ids) == len(set(ids))


# -- tampering --------------------------------------------------------------------------


@pytest.fixture
def archived(lg: Ledger, tmp_path: Path) -> Path:
    trade(lg, 5)
    archive_all(lg.redis, tmp_path)
    assert verify(tmp_path).ok
    return segments(tmp_path / "F1")[0]


def _rewrite(path: Path, change: Any) -> list[str]:
    rows = path.read_text().splitlines()
    rows = change(rows)
    path.write_text("\n".join(rows) + "\n")
    return rows


def test_verify_names_an_edited_field(archived: Path, tmp_path: Path) -> None:
    def edit(rows: list[str]) -> list[str]:
        doc = json.loads(rows[3])
        assert doc["record"]["qty"] == 1
        doc["record"]["qty"] = 1000
        rows[3] = json.dumps(doc)
        return rows

    _rewrite(archived, edit)
    b = verify(tmp_path).first_break
    assert b is not None and (b.file, b.line, b.what) == (str(archived), 4, "edited")
    result = CliRunner().invoke(cli, ["audit", "verify", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"BROKEN: {archived}:4: edited: entry ")


def test_verify_names_an_edit_with_its_hash_recomputed(archived: Path, tmp_path: Path) -> None:
    from ledger.audit import chain_hash

    def edit(rows: list[str]) -> list[str]:
        doc = json.loads(rows[2])
        doc["record"]["by"] = "someone-else"
        doc["hash"] = chain_hash(doc["prev"], doc["stream"], doc["id"], doc["record"])
        rows[2] = json.dumps(doc)
        return rows

    _rewrite(archived, edit)
    b = verify(tmp_path).first_break
    # The edited line is self-consistent now; the next one no longer follows it.
    assert b is not None and (b.line, b.what) == (4, "deleted/missing")


def test_verify_names_a_deleted_line(archived: Path, tmp_path: Path) -> None:
    _rewrite(archived, lambda rows: rows[:5] + rows[6:])
    b = verify(tmp_path).first_break
    assert b is not None and (b.file, b.line, b.what) == (str(archived), 6, "deleted/missing")
    doc = json.loads(CliRunner().invoke(cli, ["audit", "verify", str(tmp_path), "--json"]).stdout)
    assert doc["ok"] is False and doc["break"]["line"] == 6


def test_verify_against_redis_names_lines_cut_from_the_end(
    archived: Path, tmp_path: Path, redis_url: str
) -> None:
    rows = _rewrite(archived, lambda rows: rows[:-2])
    # The chain alone still holds: what is left is a valid, shorter chain.
    assert verify(tmp_path).ok
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})
    argv = ["--redis-url", redis_url, "audit", "verify", str(tmp_path), "--against-redis"]
    result = runner.invoke(cli, argv)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"BROKEN: {archived}:{len(rows) + 1}: deleted/missing: ")
    assert "lines were removed from its end" in result.stdout


def test_verify_against_redis_of_an_intact_archive(
    lg: Ledger, archived: Path, tmp_path: Path, redis_url: str
) -> None:
    trade(lg, 2, prefix="late")
    archiver = Archiver(lg.redis, lg.keys, tmp_path)
    archiver.step()  # read and acknowledged
    archiver.close()
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})
    argv = ["--redis-url", redis_url, "audit", "verify", str(tmp_path), "--against-redis"]
    assert runner.invoke(cli, argv).exit_code == 0
    trade(lg, 1, prefix="later")
    lg.redis.xreadgroup("archive", "other", {"ledger:{F1}:audit": ">"})  # read, never acked
    assert runner.invoke(cli, argv).exit_code == 0


def test_verify_names_reordered_lines(archived: Path, tmp_path: Path) -> None:
    _rewrite(archived, lambda rows: [*rows[:2], rows[3], rows[2], *rows[4:]])
    b = verify(tmp_path).first_break
    assert b is not None and (b.line, b.what) == (3, "reordered")


def test_verify_names_a_missing_first_line(archived: Path, tmp_path: Path) -> None:
    _rewrite(archived, lambda rows: rows[1:])
    b = verify(tmp_path).first_break
    assert b is not None and (b.line, b.what) == (1, "deleted/missing")


def test_verify_of_an_intact_archive_exits_0(archived: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout.startswith("OK: 12 record(s) in 2 segment(s) of 2 stream(s)")


# -- the bound with an archiver registered ------------------------------------------------


def test_without_an_archiver_the_bound_trims(redis_client: redis.Redis) -> None:
    # The control: the same run with no archive group drops old records.
    lg = Ledger(redis_client, actor="test", audit_maxlen=20)
    load(lg)
    trade(lg, 150)
    assert redis_client.xlen("ledger:{F1}:audit") < added(redis_client) - 1


def test_with_an_archiver_registered_the_bound_keeps_every_unarchived_record(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    lg = Ledger(redis_client, actor="test", audit_maxlen=20)
    load(lg)
    archive_all(redis_client, tmp_path)  # registers the group, then stops
    trade(lg, 150)
    # Archiver stopped: every record since the policy load is still in the stream.
    firm = "ledger:{F1}:audit"
    assert redis_client.xlen(firm) == int(redis_client.xinfo_stream(firm)["entries-added"])
    assert lg.archive_lag()[1].backlog == 300
    archive_all(redis_client, tmp_path)
    report = verify(tmp_path)
    assert report.ok and report.records == added(redis_client)
    # Archived, the records may go again: the stream falls back towards the bound.
    trade(lg, 150, prefix="p")
    archive_all(redis_client, tmp_path)
    trade(lg, 1, prefix="z")
    assert redis_client.xlen(firm) < 300
    assert lg.archive_lag()[1].backlog == 2


def test_global_stream_is_not_trimmed_with_an_archiver(redis_client: redis.Redis) -> None:
    lg = Ledger(redis_client, actor="test", audit_maxlen=1)
    load(lg)
    register(redis_client, "ledger:audit")
    for i in range(150):
        lg.kill("global", by="ops", reason=f"r{i}")
        lg.unkill("global", by="ops", reason=f"r{i}")
    assert redis_client.xlen("ledger:audit") == 301


# -- audit.require_archive ------------------------------------------------------------------


def _required(redis_client: redis.Redis, maxlen: int) -> Ledger:
    lg = Ledger(redis_client, actor="test", audit_maxlen=maxlen)
    doc = copy.deepcopy(TIGHT)
    doc["audit"] = {"require_archive": True}
    load(lg, doc)
    return lg


def test_require_archive_fails_closed_at_the_bound_and_resumes(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    lg = _required(redis_client, 30)
    # The policy load registered the archive: nothing is trimmed before it ever runs.
    assert lg.archive_lag()[1].backlog == 1
    n = 0
    # Bounded, so that a ledger that never refuses fails here instead of looping.
    while n < 100 and lg.reserve(_t2(f"o{n}")).accepted:
        lg.release(f"o{n}", reason="cancelled")
        n += 1
    refused = lg.reserve(_t2("x1"))
    assert refused.reason is Reason.RISK_UNAVAILABLE and not refused.accepted
    assert "audit archive is behind" in refused.message and refused.scope == "firm:F1"
    firm = "ledger:{F1}:audit"
    # The policy load, then a reserve and a release per order: nothing dropped.
    assert redis_client.xlen(firm) == 1 + 2 * n >= 30
    assert redis_client.xlen(firm) == int(redis_client.xinfo_stream(firm)["entries-added"])

    # Nothing changed: no order, no reservation, no record.
    before = (redis_client.hgetall("ledger:{F1}:agg"), redis_client.xlen(firm))
    assert lg.reserve(_t2("x2")).reason is Reason.RISK_UNAVAILABLE
    basket = lg.reserve_basket([_t2("b1"), _t2("b2")], basket_id="B1")
    assert basket.reason is Reason.RISK_UNAVAILABLE and "archive is behind" in basket.message
    assert (redis_client.hgetall("ledger:{F1}:agg"), redis_client.xlen(firm)) == before
    assert not redis_client.exists("ledger:{F1}:order:x2", "ledger:{F1}:order:b1")
    # A retry of an order decided before is still answered (it writes nothing).
    assert lg.reserve(_t2("o0")).replayed

    # The archiver catches up: orders resume; the refused ids were not remembered.
    archive_all(redis_client, tmp_path)
    again = lg.reserve(_t2("x2"))
    assert again.accepted, again
    assert verify(tmp_path).records == added(redis_client) - 1


def test_require_archive_refuses_a_replace_and_keeps_fills(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    lg = _required(redis_client, 10)
    assert lg.reserve(_t2("keep")).accepted
    i = 0
    while i < 100 and lg.reserve(_t2(f"o{i}")).accepted:
        i += 1
    firm = "ledger:{F1}:audit"
    replaced = lg.replace("keep", qty="2", price="1")
    assert replaced.reason is Reason.RISK_UNAVAILABLE
    assert redis_client.hget("ledger:{F1}:order:keep", "qty") == b"1"
    length = redis_client.xlen(firm)
    assert lg.fill("keep", "f1", qty="1", price="1").reason is Reason.OK
    assert redis_client.xlen(firm) == length + 1
    archive_all(redis_client, tmp_path)
    assert lg.replace(f"o{i - 1}", qty="2", price="1").accepted


def test_status_shows_the_archive_lag(redis_client: redis.Redis, redis_url: str) -> None:
    lg = _required(redis_client, 1000)
    trade(lg, 3)
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})
    out = runner.invoke(cli, ["--redis-url", redis_url, "status"]).stdout.splitlines()
    assert out[-3:] == [
        "audit archive:",
        "  global: 1 in stream, 1 not archived",
        "  F1: 7 in stream, 7 not archived",
    ]
    doc = json.loads(runner.invoke(cli, ["--redis-url", redis_url, "status", "--json"]).stdout)
    assert doc["archive"][1] == {
        "stream": "ledger:{F1}:audit",
        "firm": "F1",
        "length": 7,
        "archiver": True,
        "backlog": 7,
    }


# -- two days and search ----------------------------------------------------------------------

DAY1_LATE = 1_767_225_599_000  # 2025-12-31T23:59:59Z
DAY2_EARLY = 1_767_225_601_000  # 2026-01-01T00:00:01Z


@pytest.fixture
def two_days(clock: Clock, tmp_path: Path) -> Iterator[tuple[Clock, Path]]:
    lg = clock.ledger
    clock.set_ms(DAY1_LATE - 60_000)
    load(lg)
    clock.set_ms(DAY1_LATE)
    # GTC: DAY orders would expire at the UTC midnight roll in between.
    assert lg.reserve(dataclasses.replace(_t2("X"), time_in_force="GTC")).accepted
    assert lg.reserve(dataclasses.replace(_t2("Y"), time_in_force="GTC")).accepted
    lg.fill("X", "fx1", qty="1", price="1")
    Archiver(clock.redis, lg.keys, tmp_path).run()
    clock.set_ms(DAY2_EARLY)
    lg.replace("Y", qty="2", price="1")
    lg.release("X", reason="done")
    lg.release("Y", reason="done")
    Archiver(clock.redis, lg.keys, tmp_path).run()
    yield clock, tmp_path


def test_segments_roll_daily_and_close_compressed(two_days: tuple[Clock, Path]) -> None:
    _clock, directory = two_days
    names = [p.name for p in segments(directory / "F1")]
    assert names == ["2025-12-31.jsonl.gz", "2026-01-01.jsonl"]
    report = verify(directory)
    assert report.ok and report.records == 1 + 4 + 3


def test_search_finds_every_record_of_an_order_across_days(two_days: tuple[Clock, Path]) -> None:
    _clock, directory = two_days
    found = list(search(directory, "X"))
    assert [(d["record"]["op"], d["id"].split("-")[0]) for d in found] == [
        ("reserve", str(DAY1_LATE)),
        ("fill", str(DAY1_LATE)),
        ("release", str(DAY2_EARLY)),
    ]
    assert [d["record"]["op"] for d in search(directory, "Y", since_ms=DAY2_EARLY)] == [
        "replace",
        "release",
    ]
    assert list(search(directory, "Y", until_ms=DAY1_LATE - 1)) == []
    assert list(search(directory, "X", by="nobody")) == []

    result = CliRunner().invoke(
        cli,
        ["audit", "search", str(directory), "--order", "X", "--since", "2025-12-31T23:00:00Z",
         "--by", "test", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0
    docs = [json.loads(x) for x in result.stdout.splitlines()]
    assert [d["record"]["op"] for d in docs] == ["reserve", "fill", "release"]
    text = CliRunner().invoke(cli, ["audit", "search", str(directory), "--order", "Y"])
    assert [x.split()[3:5] for x in text.stdout.splitlines()] == [
        ["reserve", "OK"],
        ["replace", "OK"],
        ["release", "OK"],
    ]


def test_search_needs_a_filter(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "search", str(tmp_path)])
    assert result.exit_code == 1 and "at least one of --order" in result.output


def test_archiver_names_its_streams(lg: Ledger, tmp_path: Path) -> None:
    names = Archiver(lg.redis, lg.keys, tmp_path).streams()
    assert names == [(GLOBAL_NAME, "ledger:audit"), ("F1", "ledger:{F1}:audit")]


def test_one_archiver_at_a_time(lg: Ledger, tmp_path: Path, redis_url: str) -> None:
    trade(lg, 2)
    running = Archiver(lg.redis, lg.keys, tmp_path / "a", consumer="arch-1")
    assert running.step() == 1 + 5
    other = Archiver(lg.redis, lg.keys, tmp_path / "b", consumer="arch-2")
    with pytest.raises(ArchiverBusy, match=r"another archiver \(arch-1\) is running"):
        other.run()
    assert not (tmp_path / "b").exists()
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})
    argv = ["--redis-url", redis_url, "audit", "archive", "--dir", str(tmp_path / "b")]
    result = runner.invoke(cli, [*argv, "--by", "arch-2"])
    assert result.exit_code == 1 and "another archiver (arch-1) is running" in result.output
    running.close()
    # The same name takes over at once (a restart); a clean stop frees the lease.
    trade(lg, 1, prefix="p")
    assert Archiver(lg.redis, lg.keys, tmp_path / "a", consumer="arch-1").run() == 2
    assert runner.invoke(cli, [*argv, "--by", "arch-2"]).exit_code == 0
    assert verify(tmp_path / "a").records == added(lg.redis)
