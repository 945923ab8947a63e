"""docker-compose.ha.yml: the HA topology the README describes, checked without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ledger.durable import from_env
from ledger.sentinel import parse

ROOT = Path(__file__).resolve().parents[2]


def _services() -> dict[str, Any]:
    with open(ROOT / "docker-compose.ha.yml", encoding="utf-8") as f:
        services: dict[str, Any] = yaml.safe_load(f)["services"]
    return services


def test_a_primary_two_replicas_and_three_sentinels_with_quorum_two() -> None:
    services = _services()
    primary = services["redis-primary"]["command"]
    assert primary[primary.index("--appendonly") + 1] == "yes"
    replicas = [s for s in services.values() if "--replicaof" in (s.get("command") or [])]
    assert len(replicas) == 2
    for replica in replicas:
        cmd = replica["command"]
        assert cmd[cmd.index("--replicaof") + 1 : cmd.index("--replicaof") + 3] == [
            "redis-primary",
            "6379",
        ]
        assert cmd[cmd.index("--appendonly") + 1] == "yes"
    sentinels = [name for name, s in services.items() if "--sentinel" in str(s.get("command"))]
    assert len(sentinels) == 3
    for name in sentinels:
        assert "sentinel monitor ledger redis-primary 6379 2" in services[name]["command"][0]


def test_two_gateways_on_the_sentinels_with_durable_acknowledgement() -> None:
    services = _services()
    gateways = [s for s in services.values() if "LEDGER_GATEWAY_BIND" in s.get("environment", {})]
    assert len(gateways) == 2
    sentinels = {name for name, s in services.items() if "--sentinel" in str(s.get("command"))}
    for gw in gateways:
        env = gw["environment"]
        url = parse(env["LEDGER_REDIS_URL"])
        assert url.service == "ledger"
        assert {host for host, _ in url.sentinels} == sentinels
        assert from_env(env).replicas == 1
    load = services["policy-load"]
    assert "from_env" in load["command"][-1] and load["restart"] == "no"
