"""deploy/prometheus and deploy/grafana: promtool checks and tests the rules, the dashboard
parses, and every metric they name is one the gateway exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "limit-ledger.json"

#: Exported only where they apply: a replica's link, Prometheus's own ``up``.
CONDITIONAL = {"ledger_redis_primary_link_up", "up"}
_SUFFIXES = ("_bucket", "_total", "_count", "_sum")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None and os.environ.get("LEDGER_REQUIRE_PROMTOOL"):
        pytest.fail("promtool is required here (LEDGER_REQUIRE_PROMTOOL is set) but not on PATH")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run does)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=PROM, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_rules_and_the_config() -> None:
    rules = run("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = run("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_pass() -> None:
    result = run("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_test_fails(tmp_path: Path) -> None:
    """The unit tests can fail: a kill alert expected at the wrong time is reported."""
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    text = (PROM / "alerts_test.yml").read_text()
    (tmp_path / "t.yml").write_text(
        text.replace(
            "eval_time: 2s\n        alertname: LedgerKill",
            "eval_time: 4s\n        alertname: LedgerKill",
            1,
        )
    )
    result = subprocess.run(
        [promtool(), "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "LedgerKillSwitchActive, time: 4s" in result.stdout + result.stderr


def _rules() -> list[dict[str, object]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_alert_has_severity_annotations_and_a_runbook_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    tests = (PROM / "alerts_test.yml").read_text()
    for rule in _rules():
        name = rule["alert"]
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and labels["severity"] in ("warning", "critical"), name
        assert isinstance(notes, dict) and notes["summary"] and notes["description"], name
        anchor = str(notes["runbook_url"]).partition("#")[2]
        assert f'<a id="{anchor}"></a>' in readme, f"{name}: README has no anchor {anchor}"
        # A case that fires and one that stays quiet, for every alert.
        assert tests.count(f"alertname: {name}\n        exp_alerts: []") >= 1, name
        assert tests.count(f"alertname: {name}\n        exp_alerts:\n") >= 1, name


def test_the_kill_alert_fires_within_five_seconds() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())["global"]
    (kill,) = [r for r in _rules() if r["alert"] == "LedgerKillSwitchActive"]
    seconds = {"scrape": config["scrape_interval"], "eval": config["evaluation_interval"]}
    assert seconds == {"scrape": "1s", "eval": "1s"} and kill["for"] == "1s"
    for rule in _rules():
        if rule["alert"] != "LedgerAuditArchiveLag":
            assert str(rule["for"]).removesuffix("s") in ("1", "2", "3"), rule["alert"]


def test_grafana_dashboard_and_provisioning_parse() -> None:
    dash = json.loads(DASHBOARD.read_text())
    titles = {p["title"] for p in dash["panels"]}
    assert {"Utilization by node and limit (enforced)", "Rejects by reason"} <= titles
    assert {"Kill switches", "Decision latency"} <= titles
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    uid = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ][0]["uid"]
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {uid}
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "ledger.yml").read_text())
    assert provider["providers"][0]["type"] == "file"


def _names(exprs: list[str]) -> set[str]:
    out = set()
    for expr in exprs:
        for name in re.findall(r"\b(ledger_[a-z_]+|up)\b", expr):
            for suffix in _SUFFIXES:
                if name.endswith(suffix) and name != "ledger_up":
                    name = name.removesuffix(suffix)
                    break
            out.add(name)
    return out


def test_every_metric_the_alerts_and_dashboard_name_is_exported(
    client: FlaskClient, ledger: Ledger, auth: Callable[[str], dict[str, str]]
) -> None:
    """As Prometheus scrapes: with a monitoring token (prometheus.yml's credentials_file)."""
    text = client.get("/metrics", headers=auth("monitoring")).data.decode()
    exported = {family.name for family in text_string_to_metric_families(text)}
    exprs = [str(r["expr"]) for r in _rules()]
    exprs += [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    missing = _names(exprs) - exported - CONDITIONAL
    assert not missing, f"named but not exported: {sorted(missing)}"


def test_prometheus_scrapes_with_the_token_file_and_the_placeholder_is_refused(
    client: FlaskClient, ledger: Ledger, auth: Callable[[str], dict[str, str]]
) -> None:
    """The scrape job sends ``Authorization: Bearer`` from its credentials file; the shipped
    placeholder is no token, so a forgotten one fails the scrape instead of hiding gauges."""
    (job,) = yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"]
    assert job["authorization"]["type"] == "Bearer"
    placeholder = (PROM / job["authorization"]["credentials_file"]).read_text().strip()
    r = client.get("/metrics", headers={"Authorization": f"Bearer {placeholder}"})
    assert r.status_code == 401
    assert "ledger_limit_used" in client.get("/metrics", headers=auth("monitoring")).text
