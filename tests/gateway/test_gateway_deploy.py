"""The ways the gateway is run: gunicorn.conf.py, ``python -m gateway.run --smoke``, compose."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from ledger.store.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "gateway" / "gunicorn.conf.py"


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LEDGER_GATEWAY_")
        and k not in ("LEDGER_REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    return {**env, **extra}


def test_gunicorn_config_checks_and_reads_env_vars():
    before = set(os.listdir(tempfile.gettempdir()))
    check = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(CONF), "--check-config", "--print-config"],
        env=_env(
            LEDGER_GATEWAY_BIND="127.0.0.1:9999",
            LEDGER_GATEWAY_WORKERS="3",
            LEDGER_GATEWAY_TIMEOUT_S="12",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    settings = {
        k.strip(): v.strip()
        for k, v in (line.split(" = ", 1) for line in check.stdout.splitlines() if " = " in line)
    }
    assert settings["bind"] == "['127.0.0.1:9999']"
    assert settings["workers"] == "3"
    assert settings["timeout"] == "12"
    assert settings["wsgi_app"] == "gateway:create_app()"
    assert "child_exit" in settings["child_exit"]
    # Checking the config leaves no metrics directory behind.
    assert not {
        n
        for n in set(os.listdir(tempfile.gettempdir())) - before
        if n.startswith("ledger-gateway-metrics-")
    }


def test_main_job_smoke_starts_everything_sends_an_order_through_each_instance_and_stops():
    ports = f"{free_port()},{free_port()}"
    run = subprocess.run(
        [sys.executable, "-m", "gateway.run", "--smoke", "--ports", ports, "--workers", "1"],
        # No token secret: the main job makes one up and starts its gateways with it.
        env={k: v for k, v in _env().items() if k != "LEDGER_TOKEN_SECRET"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "redis      embedded" in out
    for role in ("order-entry", "ops", "desk-head", "risk-admin", "market-data"):
        assert f"  {role} " in out
    # Lines a shell can paste to point the CLI at the embedded Redis, with the
    # token secret the gateways were started with and one token per role.
    exports = dict(
        line.strip()[len("export ") :].split("=", 1)
        for line in out.splitlines()
        if line.strip().startswith("export ")
    )
    assert exports["LEDGER_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert len(exports["LEDGER_TOKEN_SECRET"]) >= 32
    for role in ("ORDER_ENTRY", "OPS", "DESK_HEAD", "RISK_ADMIN", "MARKET_DATA"):
        assert exports[f"LEDGER_TOKEN_{role}"].startswith("llt_")
    answers = [line for line in out.splitlines() if "/v1/orders -> " in line]
    assert len(answers) == 2 and all("-> 201" in a and '"accepted"' in a for a in answers)
    assert "OK: both instances accepted an order" in out and out.rstrip().endswith("stopped")


@pytest.fixture(scope="module")
def compose() -> dict:
    with open(ROOT / "docker-compose.yml") as f:
        return yaml.safe_load(f)


def test_compose_has_aof_redis_two_gateways_and_a_policy_load(compose):
    # The default stack: the services of no profile (profile "ha": tests/ha/test_compose_ha.py).
    services = {n: s for n, s in compose["services"].items() if not s.get("profiles")}
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert redis_cmd[redis_cmd.index("--appendfsync") + 1] == "always"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    gateways = [
        s
        for s in services.values()
        if s.get("build") and "LEDGER_GATEWAY_BIND" in s.get("environment", {})
    ]
    assert len(gateways) >= 2
    for gw in gateways:
        assert gw["environment"]["LEDGER_REDIS_URL"] == "redis://redis:6379/0"
        assert any("policy.yaml" in v for v in gw["volumes"])
        assert len({g["ports"][0] for g in gateways}) == len(gateways)
    load = services["policy-load"]
    assert "load_policy" in "\n".join(load["command"]) and load["restart"] == "no"
    assert (ROOT / "Dockerfile").exists()


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


def test_docker_compose_config_parses():
    cli = _compose_cli()
    if cli is None:
        pytest.skip("the docker compose plugin is not installed")
    done = subprocess.run(
        [*cli, "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        # The secrets of deploy/env.example, which compose refuses to start without.
        env={
            **os.environ,
            "LEDGER_REDIS_ADMIN_PASSWORD": "a" * 32,
            "LEDGER_REDIS_GATEWAY_PASSWORD": "g" * 32,
            "LEDGER_TOKEN_SECRET": "t" * 32,
            "LEDGER_SENTINEL_PASSWORD": "s" * 32,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert {"redis", "policy-load", "gateway-a", "gateway-b"} <= set(config["services"])
    assert "sentinel-1" not in config["services"]
    ha = subprocess.run(
        [
            *cli,
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--profile",
            "ha",
            "config",
            "--format",
            "json",
        ],
        env={
            **os.environ,
            "LEDGER_REDIS_ADMIN_PASSWORD": "a" * 32,
            "LEDGER_REDIS_GATEWAY_PASSWORD": "g" * 32,
            "LEDGER_TOKEN_SECRET": "t" * 32,
            "LEDGER_SENTINEL_PASSWORD": "s" * 32,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ha.returncode == 0, ha.stderr
    services = set(json.loads(ha.stdout)["services"])
    assert {"redis-ha-primary", "sentinel-3", "gateway-ha-a", "gateway-ha-b"} <= services


def test_compose_runs_one_archiver_on_a_volume(compose):
    archiver = compose["services"]["archiver"]
    cmd = archiver["command"]
    assert cmd[:3] == ["ledger", "audit", "archive"] and "--follow" in cmd
    directory = cmd[cmd.index("--dir") + 1]
    assert [v for v in archiver["volumes"] if v.endswith(f":{directory}")]
    assert archiver["volumes"][0].split(":")[0] in compose["volumes"]
    assert archiver["environment"]["LEDGER_REDIS_URL"] == "redis://redis:6379/0"
    # Redis's default user is off: the archiver logs in (XREADGROUP, XACK, its lease).
    assert archiver["environment"]["LEDGER_REDIS_USERNAME"] == "admin"
    assert "LEDGER_REDIS_ADMIN_PASSWORD" in archiver["environment"]["LEDGER_REDIS_PASSWORD"]
    assert "replicas" not in archiver.get("deploy", {})
