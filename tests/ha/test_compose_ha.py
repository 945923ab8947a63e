"""The profile "ha" of docker-compose.yml: the HA topology the README describes.

Its structure is checked without Docker; the part Docker would run that the
ledger owns, deploy/redis/start.sh starting a primary and a replica with the
ACL users, is run for real: the replica logs in to the primary as admin, and
the gateway user is acknowledged durably.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from ledger import Ledger, load_policy_file
from ledger.store.durable import NotDurable, from_env
from ledger.store.embedded import free_port
from ledger.store.sentinel import parse
from tests.conftest import BINARIES, EXAMPLE_POLICY
from tests.gateway.test_gateway_security import ADMIN_PW, GATEWAY_PW, START, _order, _start

ROOT = Path(__file__).resolve().parents[2]
HA = "ha"


def _services() -> dict[str, Any]:
    with open(ROOT / "docker-compose.yml", encoding="utf-8") as f:
        services: dict[str, Any] = yaml.safe_load(f)["services"]
    return {name: s for name, s in services.items() if HA in (s.get("profiles") or [])}


def _data_nodes(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if "start.sh" in " ".join(s.get("command") or [])}


def _sentinels(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if "--sentinel" in str(s.get("command"))}


def test_a_primary_two_replicas_and_three_sentinels_with_quorum_two() -> None:
    services = _services()
    nodes = _data_nodes(services)
    assert len(nodes) == 3
    for node in nodes.values():
        # The same ACL users on every data node: deploy/redis/start.sh and its two passwords.
        cmd = node["command"]
        assert cmd[:2] == ["sh", "/etc/ledger-redis/start.sh"]
        assert cmd[cmd.index("--appendonly") + 1] == "yes"
        assert cmd[cmd.index("--appendfsync") + 1] == "always"
        assert "./deploy/redis:/etc/ledger-redis:ro" in node["volumes"]
        env = node["environment"]
        assert {"LEDGER_REDIS_ADMIN_PASSWORD", "LEDGER_REDIS_GATEWAY_PASSWORD"} <= set(env)
        assert "--user gateway" in node["healthcheck"]["test"][1]
    replicas = [n for n in nodes.values() if "LEDGER_REDIS_REPLICAOF" in n["environment"]]
    assert len(replicas) == 2
    assert {r["environment"]["LEDGER_REDIS_REPLICAOF"] for r in replicas} == {
        "redis-ha-primary 6379"
    }
    sentinels = _sentinels(services)
    assert len(sentinels) == 3
    for s in sentinels.values():
        conf = s["command"][0]
        assert "sentinel monitor ledger redis-ha-primary 6379 2" in conf
        # The sentinels log in to the data nodes, and ask a password of their own.
        assert "sentinel auth-user ledger admin" in conf
        assert 'sentinel auth-pass ledger "$$LEDGER_REDIS_ADMIN_PASSWORD"' in conf
        assert 'requirepass "$$LEDGER_SENTINEL_PASSWORD"' in conf
        assert "-a" in s["healthcheck"]["test"][1]


def test_two_gateways_on_the_sentinels_with_durable_acknowledgement() -> None:
    services = _services()
    gateways = {
        n: s for n, s in services.items() if "LEDGER_GATEWAY_BIND" in s.get("environment", {})
    }
    assert len(gateways) == 2
    sentinels = set(_sentinels(services))
    for gw in gateways.values():
        env = gw["environment"]
        url = parse(env["LEDGER_REDIS_URL"].replace("${", "").replace("}", ""))
        assert url.service == "ledger"
        assert {host for host, _ in url.sentinels} == sentinels
        assert "sentinel_password" in url.options
        assert from_env(env).replicas == 1
        assert env["LEDGER_REDIS_USERNAME"] == "gateway"
        assert "LEDGER_REDIS_GATEWAY_PASSWORD" in env["LEDGER_REDIS_PASSWORD"]
        assert set(gw["depends_on"]) == {"policy-load-ha"}
    load = services["policy-load-ha"]
    assert "from_env" in load["command"][-1] and load["restart"] == "no"
    assert load["environment"]["LEDGER_REDIS_USERNAME"] == "admin"
    assert len({p for g in gateways.values() for p in g["ports"]}) == 2


def test_every_secret_the_compose_file_asks_for_is_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    asked = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    given = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    assert "LEDGER_SENTINEL_PASSWORD" in asked and asked == given


# -- deploy/redis/start.sh as the profile runs it: a primary and its replica -------------


@pytest.fixture(params=sorted(BINARIES))
def acl_pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, int, Any]]:
    """A primary and a replica, each started by deploy/redis/start.sh with the ACL users."""
    procs = []
    ports = []
    try:
        for role in ("primary", "replica"):
            d = tmp_path / role
            d.mkdir()
            port, log = free_port(), d / "server.log"
            env = {
                **os.environ,
                "LEDGER_REDIS_ADMIN_PASSWORD": ADMIN_PW,
                "LEDGER_REDIS_GATEWAY_PASSWORD": GATEWAY_PW,
                "LEDGER_REDIS_ACL_FILE": str(d / "users.acl"),
                "LEDGER_REDIS_CONF_FILE": str(d / "redis.conf"),
                "LEDGER_REDIS_SERVER": BINARIES[request.param],
            }
            if role == "replica":
                env["LEDGER_REDIS_REPLICAOF"] = f"127.0.0.1 {ports[0]}"
            args = ["sh", str(START), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--dir", str(d), "--logfile", str(log), "--daemonize", "no"]
            args += ["--repl-diskless-sync-delay", "0"]
            probe = redis.Redis(port=port, username="admin", password=ADMIN_PW, socket_timeout=1)
            procs.append(_start(args, env, log, probe.ping))
            probe.close()
            ports.append(port)
        yield ports[0], ports[1], procs[1]
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


def test_the_replica_logs_in_as_admin_and_the_gateway_user_is_acknowledged_durably(
    acl_pair: tuple[int, int, Any], tmp_path: Path
) -> None:
    primary, replica, replica_proc = acl_pair
    admin_replica = redis.Redis(port=replica, username="admin", password=ADMIN_PW)
    deadline = time.monotonic() + 30
    while admin_replica.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not log in to the primary"
        time.sleep(0.1)
    # The admin password reaches the replica through a file only its owner reads,
    # never the command line.
    conf = tmp_path / "replica" / "redis.conf"
    assert "masterauth" in conf.read_text() and conf.stat().st_mode & 0o077 == 0
    cmdline = Path(f"/proc/{replica_proc.pid}/cmdline").read_bytes()
    assert ADMIN_PW.encode() not in cmdline
    admin = Ledger(redis.Redis(port=primary, username="admin", password=ADMIN_PW), actor="admin")
    admin.load_policy(load_policy_file(EXAMPLE_POLICY), by="admin")
    gw = Ledger.from_url(
        f"redis://gateway:{GATEWAY_PW}@127.0.0.1:{primary}/0",
        timeout_s=5,
        durable_replicas=1,
        durable_timeout_ms=10_000,
    )
    # The gateway user may PUBLISH the durability channel, WAIT and read INFO.
    assert gw.durable.not_ready() is None
    assert gw.reserve(_order("d1")).accepted
    assert admin_replica.exists(gw.keys.order("ACME", "d1"))
    two = Ledger.from_url(
        f"redis://gateway:{GATEWAY_PW}@127.0.0.1:{primary}/0",
        timeout_s=5,
        durable_replicas=2,
        durable_timeout_ms=50,
    )
    with pytest.raises(NotDurable, match="1 of 2 replica"):
        two.reserve(_order("d2"))
