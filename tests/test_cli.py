"""The ``ledger`` command line and ``python -m ledger.run``, against the tests' real servers.

Commands run through click's CliRunner with ``--redis-url`` pointing at the
session's server; ``--json`` output is parsed and checked against what the
facade reports. The main job runs in a subprocess on its own embedded server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from click.testing import CliRunner, Result

import ledger.cli.audit as audit_commands
from ledger import Ledger, Order, load_policy_file, parse_policy
from ledger.cli import cli
from ledger.errors import PolicyError
from ledger.store.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "policy.yaml"
#: 100 AAPL at 187.25 in account ACC-1 (desk EQ-CASH): 18725.00 USD, 1872500 minor units.
O1 = Order("o1", "T-ALICE", "MM-1", "ACC-1", "AAPL", "buy", "100", "187.25")

BAD_POLICY = """\
version: 2
currency: USD
firms:
  - id: ACME
    limits: {max_gros_notional: "100"}
"""


Run = Callable[..., Result]


@pytest.fixture
def run(redis_url: str) -> Run:
    """``run(*args)``: the CLI on the test server, with no ``LEDGER_*`` variables leaking in."""
    runner = CliRunner(env={"LEDGER_REDIS_URL": None, "LEDGER_PREFIX": None})

    def invoke(*args: str, url: str | None = redis_url) -> Result:
        argv = ["--redis-url", url, *args] if url is not None else list(args)
        return runner.invoke(cli, argv, catch_exceptions=False)

    return invoke


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _closed_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def _problems(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy_file(path)
    return info.value.problems


# -- policy validate (offline) --------------------------------------------------------


def test_validate_ok_is_offline() -> None:
    result = CliRunner().invoke(cli, ["--redis-url", _closed_url(), "policy", "validate",
                                      str(EXAMPLE)])
    sha = load_policy_file(EXAMPLE).sha256
    assert result.exit_code == 0
    assert result.stdout == f"{EXAMPLE}: OK (10 nodes, sha256 {sha})\n"


def test_validate_json() -> None:
    result = CliRunner().invoke(cli, ["policy", "validate", str(EXAMPLE), "--json"])
    assert _json(result) == {"file": str(EXAMPLE), "ok": True, "nodes": 10,
                             "sha256": load_policy_file(EXAMPLE).sha256, "problems": []}


def test_validate_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_POLICY)
    result = CliRunner().invoke(cli, ["policy", "validate", str(bad)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == _problems(bad)
    assert any("version" in line for line in lines)
    assert any("firms[0].limits.max_gros_notional" in line for line in lines)
    assert all(line.startswith(str(bad)) for line in lines)
    assert "Traceback" not in result.output


def test_validate_json_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_POLICY)
    result = CliRunner().invoke(cli, ["policy", "validate", str(bad), "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["sha256"] is None
    assert doc["problems"] == _problems(bad)


@pytest.mark.parametrize("content, expected", [
    (None, "cannot read"),
    ("firms: [\n", "not valid YAML"),
])
def test_validate_unreadable_or_not_yaml(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "policy.yaml"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(cli, ["policy", "validate", str(path)])
    assert result.exit_code == 1
    assert expected in result.stdout and str(path) in result.stdout


# -- policy load / show ---------------------------------------------------------------


def test_policy_load_and_show(run: Run, redis_client: redis.Redis) -> None:
    sha = load_policy_file(EXAMPLE).sha256
    result = run("policy", "load", str(EXAMPLE), "--by", "alice")
    assert result.exit_code == 0
    assert result.stdout == f"loaded {EXAMPLE}: revision 1, sha256 {sha} (10 nodes)\n"
    assert _json(run("policy", "load", str(EXAMPLE), "--by", "bob", "--json")) == {
        "file": str(EXAMPLE), "revision": 2, "sha256": sha, "by": "bob", "nodes": 10}

    lg = Ledger(redis_client)
    assert lg.policy() is not None and lg.policy().sha256 == sha  # type: ignore[union-attr]
    loads = [r for r in lg.audit_tail(10)
             if r["op"] == "policy_load" and r["stream"] == "ledger:audit"]
    assert [r["by"] for r in loads] == ["alice", "bob"]

    shown = _json(run("policy", "show", "--json"))
    assert shown["revision"] == 2 and shown["sha256"] == sha and shown["by"] == "bob"
    assert shown["source"] == str(EXAMPLE) and shown["firms"] == ["ACME"] and shown["nodes"] == 10
    assert shown["currency"] == "USD" and shown["minor_units"] == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown["at"])
    human = run("policy", "show")
    assert human.exit_code == 0
    assert re.search(r"^revision +2$", human.stdout, re.M)
    assert re.search(rf"^sha256 +{sha}$", human.stdout, re.M)
    assert re.search(r"^loaded by +bob$", human.stdout, re.M)


def test_policy_load_invalid_changes_nothing(run: Run, ledger: Ledger, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_POLICY)
    result = run("policy", "load", str(bad), "--by", "alice")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {_problems(bad)[0]}", *_problems(bad)[1:]]
    assert _json(run("policy", "show", "--json"))["revision"] == 1


def test_policy_load_needs_by(run: Run, redis_client: redis.Redis) -> None:
    result = run("policy", "load", str(EXAMPLE))
    assert result.exit_code == 1
    assert "Missing option '--by'" in result.stderr
    assert Ledger(redis_client).policy() is None


def test_policy_show_without_policy(run: Run, redis_client: redis.Redis) -> None:
    result = run("policy", "show")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no policy is loaded; load one with: ledger policy load FILE --by NAME\n")
    assert json.loads(run("policy", "show", "--json").stdout) == {"revision": None}


# -- kill switches and status ---------------------------------------------------------


def test_kill_lists_open_orders_and_blocks(run: Run, ledger: Ledger) -> None:
    assert ledger.reserve(O1).accepted
    result = run("kill", "desk:EQ-CASH", "--by", "bob", "--reason", "runaway algo")
    assert result.exit_code == 0
    assert result.stdout == (
        "killed desk:EQ-CASH (by bob: runaway algo)\nopen orders to cancel: 1\n  o1\n")
    assert ledger.reserve(replace(O1, order_id="o2")).reason.value == "KILL_SWITCH"

    doc = _json(run("kill", "desk:EQ-CASH", "--by", "bob", "--reason", "again", "--json"))
    assert doc == {"op": "kill", "scope": "desk:EQ-CASH", "by": "bob", "reason": "again",
                   "already": True, "open_orders": ["o1"]}
    assert run("kill", "desk:EQ-CASH", "--by", "bob", "--reason", "x").stdout.startswith(
        "desk:EQ-CASH was already killed; nothing changed\n")


def test_unkill_lifts(run: Run, ledger: Ledger) -> None:
    ledger.kill("account:ACC-1", by="bob", reason="check")
    doc = _json(run("unkill", "account:ACC-1", "--by", "carol", "--reason", "checked", "--json"))
    assert doc == {"op": "unkill", "scope": "account:ACC-1", "by": "carol", "reason": "checked",
                   "already": False, "open_orders": []}
    assert ledger.reserve(O1).accepted
    result = run("unkill", "account:ACC-1", "--by", "carol", "--reason", "again")
    assert result.exit_code == 0
    assert result.stdout == "account:ACC-1 was not killed; nothing changed\n"


def test_kill_global_and_status(run: Run, ledger: Ledger) -> None:
    quiet = run("status")
    assert quiet.exit_code == 0
    assert quiet.stdout.splitlines()[1] == "kill switches: none active"
    assert run("kill", "global", "--by", "ops", "--reason", "market halt").exit_code == 0
    assert run("kill", "trader:T-BOB", "--by", "risk", "--reason", "limit review").exit_code == 0

    doc = _json(run("status", "--json"))
    assert doc["policy"]["revision"] == 1 and doc["policy"]["by"] == "test"
    kills = {k["scope"]: k for k in doc["kills"]}
    assert set(kills) == {"global", "trader:T-BOB"}
    assert kills["global"]["by"] == "ops" and kills["global"]["reason"] == "market halt"
    assert kills["trader:T-BOB"]["by"] == "risk"
    assert all(isinstance(k["at_ms"], int) for k in doc["kills"])

    lines = run("status").stdout.splitlines()
    assert lines[0].startswith("policy: revision 1, sha256 ")
    assert lines[1] == "kill switches: 2 active"
    assert lines[2].split() == ["SCOPE", "BY", "SINCE", "REASON"]
    assert lines[3].split()[:2] == ["global", "ops"] and lines[3].endswith("market halt")
    assert ledger.reserve(O1).reason.value == "KILL_SWITCH"


@pytest.mark.parametrize("command", ["kill", "unkill"])
def test_kill_unknown_scope(run: Run, ledger: Ledger, command: str) -> None:
    result = run(command, "desk:NOPE", "--by", "bob", "--reason", "x")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: unknown scope desk:NOPE: no such node")
    assert len(result.stderr.splitlines()) == 1
    assert ledger.kills() == []


@pytest.mark.parametrize("args, message", [
    (["kill", "EQ-CASH", "--by", "bob", "--reason", "x"],
     "Error: scope: must be 'global' or kind:id"),
    (["kill", "desk:EQ-CASH", "--by", " ", "--reason", "x"], "Error: by: must be a non-empty text"),
    (["kill", "desk:EQ-CASH", "--by", "bob"], "Missing option '--reason'"),
    (["unkill", "--by", "bob", "--reason", "x"], "Missing argument 'SCOPE'"),
])
def test_kill_bad_input(run: Run, ledger: Ledger, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert ledger.kills() == []


# -- utilization ----------------------------------------------------------------------


def test_utilization_table(run: Run, ledger: Ledger) -> None:
    assert ledger.reserve(O1).accepted
    result = run("utilization")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "utilization under global (money in USD)"
    assert lines[1].split() == ["SCOPE", "LIMIT", "USED", "MAX", "PERCENT"]
    rows = {(cells[0], cells[1]): cells[2:] for cells in (line.split() for line in lines[2:])}
    assert rows[("desk:EQ-CASH", "max_gross_notional")] == ["18725.00", "10000000.00", "0.2%"]
    assert rows[("desk:EQ-CASH", "max_open_orders")] == ["1", "500", "0.2%"]
    assert rows[("trader:T-ALICE", "max_gross_notional")] == ["18725.00", "2000000.00", "0.9%"]
    assert rows[("strategy:MM-1", "messages.all.per_second")][:2] == ["1", "50"]
    firsts = [" ".join(line.split()[:3]) for line in lines]
    assert "trader:T-BOB max_net_notional (shadow)" in firsts
    # The last column is right-aligned: every row ends where the header does.
    assert {len(line) for line in lines[2:]} == {len(lines[1])}


def test_utilization_json_for_a_scope(run: Run, ledger: Ledger) -> None:
    assert ledger.reserve(O1).accepted
    doc = _json(run("utilization", "desk:EQ-CASH", "--json"))
    assert doc["scope"] == "desk:EQ-CASH" and doc["currency"] == "USD" and doc["minor_units"] == 2
    rows = {(r["scope"], r["limit_name"]): r for r in doc["rows"]}
    assert {scope for scope, _ in rows} == {
        "desk:EQ-CASH", "strategy:MM-1", "trader:T-ALICE", "trader:T-BOB"}
    gross = rows[("desk:EQ-CASH", "max_gross_notional")]
    assert gross == {"scope": "desk:EQ-CASH", "limit_name": "max_gross_notional",
                     "used": 1872500, "limit": 1000000000, "percent": 0.19, "shadow": False,
                     "unit": "minor", "used_major": "18725.00", "limit_major": "10000000.00",
                     "policy_limit": 1000000000, "policy_limit_major": "10000000.00",
                     "override": None, "factor": None}
    assert rows[("desk:EQ-CASH", "max_open_orders")]["unit"] == "count"
    assert rows[("desk:EQ-CASH", "max_open_orders")]["used"] == 1
    assert rows[("trader:T-BOB", "max_net_notional")]["shadow"] is True
    facade = {(r.scope, r.limit_name): r.used for r in ledger.utilization("desk:EQ-CASH")}
    assert {k: r["used"] for k, r in rows.items()} == facade


@pytest.mark.parametrize("scope", ["desk:NOPE", "nonsense"])
def test_utilization_unknown_scope(run: Run, ledger: Ledger, scope: str) -> None:
    result = run("utilization", scope)
    assert result.exit_code == 1
    assert result.stderr == f"Error: unknown scope {scope}: no such node in the loaded policy\n"


def test_utilization_without_policy(run: Run, redis_client: redis.Redis) -> None:
    result = run("utilization")
    assert result.exit_code == 1
    assert "no policy is loaded" in result.stderr


# -- audit tail -----------------------------------------------------------------------


def test_audit_tail(run: Run, ledger: Ledger) -> None:
    assert ledger.reserve(O1).accepted
    ledger.kill("desk:EQ-CASH", by="bob", reason="why")
    result = run("audit", "tail", "-n", "2")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["op"], r.get("order_id", r.get("scope"))) for r in records] == [
        ("reserve", "o1"), ("kill", "desk:EQ-CASH")]
    assert records[1]["by"] == "bob" and records[1]["why"] == "why"
    every = [json.loads(line) for line in run("audit", "tail", "--json").stdout.splitlines()]
    assert [r["entry_id"] for r in every] == [r["entry_id"] for r in ledger.audit_tail(20)]
    assert {r["op"] for r in every} == {"policy_load", "reserve", "kill"}


def test_audit_tail_bad_count(run: Run, ledger: Ledger) -> None:
    result = run("audit", "tail", "-n", "0")
    assert result.exit_code == 1
    assert "Invalid value for '-n'" in result.stderr


def test_audit_follow_prints_new_records_until_ctrl_c(
    run: Run, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ledger.reserve(O1).accepted
    polls: list[float] = []

    def fake_sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            # New records in the firm stream and in the global one, which the tail left out.
            ledger.kill("global", by="ops", reason="halt")
        elif len(polls) == 2:
            ledger.unkill("global", by="ops", reason="resume")
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(audit_commands, "_sleep", fake_sleep)
    result = run("audit", "tail", "-n", "1", "--follow", "--interval", "0.5")
    assert result.exit_code == 0
    assert polls == [0.5, 0.5, 0.5]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["op"] == "reserve"
    followed = [(r["op"], r["stream"]) for r in records[1:]]
    assert sorted(followed) == sorted([
        ("kill", "ledger:audit"), ("kill", "ledger:{ACME}:audit"),
        ("unkill", "ledger:audit"), ("unkill", "ledger:{ACME}:audit")])
    assert [r["op"] for r in records[1:]] == ["kill", "kill", "unkill", "unkill"]
    entry_ids = [(r["stream"], r["entry_id"]) for r in records]
    assert len(set(entry_ids)) == len(entry_ids)


# -- check ----------------------------------------------------------------------------


def test_check_ok(run: Run, ledger: Ledger) -> None:
    assert ledger.reserve(O1).accepted
    result = run("check")
    assert result.exit_code == 0
    assert result.stdout == "OK: 5 nodes and 1 orders checked, no breach\n"
    assert _json(run("check", "--json")) == {
        "ok": True, "nodes": 5, "orders": 1, "breaches": [], "over": [], "reconciled": {}}


def test_check_without_a_policy_exits_1_saying_so(run: Run, redis_client: redis.Redis) -> None:
    # redis_client: the server is flushed, so no policy is loaded.
    for args in (("check",), ("check", "--json")):
        result = run(*args)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == ("Error: nothing checked: no policy is loaded; "
                                 "load one with: ledger policy load FILE --by NAME\n")


def test_check_names_every_breach(run: Run, ledger: Ledger, redis_client: redis.Redis) -> None:
    assert ledger.reserve(O1).accepted
    assert ledger.reserve(replace(O1, order_id="o2", qty="1")).accepted
    # A tightened policy leaves the desk over its new limit ...
    document = yaml.safe_load(EXAMPLE.read_text())
    document["firms"][0]["desks"][0]["limits"]["max_gross_notional"] = "10000"
    ledger.load_policy(parse_policy(document), by="test")
    # ... and a lost order hash leaves every node on its path off its orders' sum.
    redis_client.delete(ledger.keys.order("ACME", "o2"))
    result = run("check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    breaches = ledger.check().breaches
    assert lines == [f"{len(breaches)} breach(es):", *(f"  {b}" for b in breaches)]
    named = {b.split(": ")[0] for b in breaches}
    path = {"firm:ACME", "desk:EQ-CASH", "account:ACC-1", "strategy:MM-1", "trader:T-ALICE"}
    # Each node's aggregates, and its position in the order's symbol.
    assert named == path | {f"{scope}|AAPL" for scope in path}
    assert any(b.startswith("desk:EQ-CASH: max_gross_notional") for b in breaches)
    doc = json.loads(run("check", "--json").stdout)
    assert doc["ok"] is False and doc["breaches"] == breaches and doc["orders"] == 1


# -- connection and global options ----------------------------------------------------


@pytest.mark.parametrize("args", [
    ["status"],
    ["policy", "show"],
    ["policy", "load", str(EXAMPLE), "--by", "alice"],
    ["kill", "desk:EQ-CASH", "--by", "bob", "--reason", "x"],
    ["unkill", "global", "--by", "bob", "--reason", "x"],
    ["utilization"],
    ["audit", "tail"],
    ["check"],
])
def test_unreachable_redis_exits_2(args: list[str]) -> None:
    url = _closed_url()
    result = CliRunner().invoke(cli, ["--redis-url", url, "--timeout", "0.5", *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: ledger unavailable at {url}: ")
    assert "ConnectionError" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_cluster_unreachable_exits_2() -> None:
    url = _closed_url()
    args = ["--cluster", "--redis-url", url, "--timeout", "0.5", "status"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: ledger unavailable at {url}: ")
    assert len(result.stderr.splitlines()) == 1


def test_password_is_not_printed() -> None:
    port = free_port()
    result = CliRunner().invoke(cli, ["--redis-url", f"redis://:s3cret@127.0.0.1:{port}/0",
                                      "--timeout", "0.5", "status"])
    assert result.exit_code == 2
    assert "s3cret" not in result.output
    assert f"redis://:***@127.0.0.1:{port}/0" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--redis-url", "http://127.0.0.1:6390/0", "status"], "Error: invalid --redis-url http://127.0.0.1:6390/0"),
    (["--redis-url", "redis://127.0.0.1:port/0", "check"], "Error: invalid --redis-url"),
    (["--timeout", "0", "status"], "Invalid value for '--timeout'"),
    (["--prefix", "a{b}", "status"], "Invalid value for '--prefix'"),
    (["no-such-command"], "No such command 'no-such-command'"),
])
def test_bad_global_input_exits_1(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_url_and_prefix_from_environment(redis_url: str, ledger: Ledger) -> None:
    runner = CliRunner(env={"LEDGER_REDIS_URL": redis_url, "LEDGER_PREFIX": "other"})
    assert runner.invoke(cli, ["policy", "show"]).exit_code == 1
    loaded = runner.invoke(cli, ["policy", "load", str(EXAMPLE), "--by", "env", "--json"])
    assert json.loads(loaded.stdout)["revision"] == 1
    # The other prefix is a separate ledger: the default one still has revision 1 by "test".
    default = runner.invoke(cli, ["--prefix", "ledger", "policy", "show", "--json"])
    assert _json(default)["by"] == "test"
    assert _json(runner.invoke(cli, ["policy", "show", "--json"]))["by"] == "env"
    assert Ledger(ledger.redis, prefix="other").policy() is not None


def test_module_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "policy", "validate", str(EXAMPLE)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{EXAMPLE}: OK (10 nodes, sha256 ")


# -- python -m ledger.run -------------------------------------------------------------


def _run_env(server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_REDIS_SERVER"] = server.executable
    return env | extra


def _check_demo_output(stdout: str) -> str:
    """The URL it ran against, after checking every part of the demo was printed."""
    lines = stdout.splitlines()
    url = re.match(r"ledger at (redis://\S+) \(prefix ledger\)$", lines[0])
    assert url, lines[0]
    decisions = {line.split()[0]: line.split() for line in lines if line.startswith("demo-")}
    assert [decisions[f"demo-{i}"][-3] for i in range(1, 5)] == ["accepted"] * 4
    assert decisions["demo-1"][-1] == "18725.00"
    assert decisions["demo-5"][-2:] == ["MAX_ORDER_QTY", "account:ACC-1"]
    assert decisions["demo-6"][-2:] == ["NOT_ENTITLED", "trader:T-ALICE"]
    util = lines.index("utilization (money in USD)")
    assert lines[util + 1].split() == ["SCOPE", "LIMIT", "USED", "MAX", "PERCENT"]
    assert any(line.split()[:3] == ["desk:EQ-CASH", "max_open_orders", "3"] for line in lines)
    tail = lines.index("audit tail (newest 20)")
    records = [json.loads(line) for line in lines[tail + 1:] if line.startswith("{")]
    assert [r["order_id"] for r in records if r["op"] == "reserve"] == [
        f"demo-{i}" for i in range(1, 7)]
    return url.group(1)


def test_main_job_runs_on_a_fresh_embedded_server(server: Any, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ledger.run"], env=_run_env(server),
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    url = _check_demo_output(proc.stdout)
    assert url != f"redis://{server.host}:{server.port}/0"
    # The embedded server was stopped on exit.
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


def test_main_job_uses_ledger_redis_url(
    server: Any, redis_url: str, redis_client: redis.Redis
) -> None:
    proc = subprocess.run([sys.executable, "-m", "ledger.run", "--policy", str(EXAMPLE)],
                          env=_run_env(server, LEDGER_REDIS_URL=redis_url),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _check_demo_output(proc.stdout) == redis_url
    lg = Ledger(redis_client)
    assert lg.policy() is not None
    assert lg.check().ok and lg.check().orders == 4


def test_main_job_keep_running_until_ctrl_c(server: Any, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "ledger.run", "--keep-running"],
                            env=_run_env(server), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    # Bounds the blocking reads below should the job hang.
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("running at "):
                break
        assert seen and seen[-1].startswith("running at "), "".join(seen)
        url = seen[-1].split()[2].rstrip(";")
        exports = {}
        for line in proc.stdout:
            if line.startswith("press Ctrl-C"):
                break
            if line.strip().startswith("export "):
                name, _, value = line.strip()[len("export "):].partition("=")
                exports[name] = value
        # What it says to paste points the CLI, token commands included, at the demo.
        assert exports["LEDGER_REDIS_URL"] == url
        from click.testing import CliRunner

        from ledger.cli import cli
        made = CliRunner().invoke(cli, ["token", "create", "--role", "ops", "--name", "o"],
                                  env=exports)
        assert made.exit_code == 0, made.output
        lg = Ledger.from_url(url, timeout_s=5.0)
        assert lg.policy() is not None and lg.check().orders == 4
        lg.redis.close()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    assert rest.splitlines()[-1] == "stopped"
    _check_demo_output("".join(seen))
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


def test_main_job_rejects_an_invalid_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_POLICY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    proc = subprocess.run([sys.executable, "-m", "ledger.run", "--policy", str(bad)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == _problems(bad)
    assert proc.stdout == ""


def test_main_job_unreachable_url_exits_2() -> None:
    url = _closed_url()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    proc = subprocess.run([sys.executable, "-m", "ledger.run"], env=env | {"LEDGER_REDIS_URL": url},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: ledger unavailable: ConnectionError")
    assert len(proc.stderr.splitlines()) == 1


def test_token_commands_are_part_of_the_ledger_cli(redis_url):
    from click.testing import CliRunner

    from ledger.cli import cli

    runner = CliRunner()
    made = runner.invoke(cli, ["--redis-url", redis_url, "token", "create", "--role", "ops",
                               "--name", "ops-1"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(cli, ["--redis-url", redis_url, "token", "list", "--json"])
    assert listed.exit_code == 0 and "ops-1" in listed.output
