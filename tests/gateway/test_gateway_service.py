"""Config, health, metrics and the OpenAPI document."""

from __future__ import annotations

import os
import re

import pytest

from gateway import create_app, get_ledger
from gateway.openapi import document
from ledger.store.embedded import free_port


def test_config_comes_from_ledger_env_vars_and_test_config_wins(monkeypatch):
    monkeypatch.setenv("LEDGER_REDIS_URL", "redis://10.0.0.1:7000/3")
    monkeypatch.setenv("LEDGER_REDIS_TIMEOUT_MS", "75")
    monkeypatch.setenv("LEDGER_PREFIX", "desk1")
    app = create_app()
    assert app.config["REDIS_URL"] == "redis://10.0.0.1:7000/3"
    assert app.config["REDIS_TIMEOUT_MS"] == 75
    assert app.config["PREFIX"] == "desk1"
    assert create_app({"PREFIX": "other"}).config["PREFIX"] == "other"


def test_defaults(monkeypatch):
    for name in [n for n in os.environ if n.startswith("LEDGER_")]:
        monkeypatch.delenv(name)
    # The token secret has no default: a gateway refuses to start without one.
    with pytest.raises(ValueError, match="LEDGER_TOKEN_SECRET"):
        create_app()
    app = create_app({"TOKEN_SECRET": "s" * 16})
    assert app.config["REDIS_TIMEOUT_MS"] == 50 and app.config["PREFIX"] == "ledger"


def test_the_ledger_is_made_on_first_use_and_kept_per_process(app):
    assert "ledger" not in app.extensions
    with app.app_context():
        first = get_ledger()
        assert get_ledger() is first
        assert first.redis.connection_pool.connection_kwargs["socket_timeout"] == 2.0
        app.extensions["ledger"].pid = -1  # as seen from a forked worker
        assert get_ledger() is not first


def test_healthz_never_needs_redis():
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    r = app.test_client().get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_readyz_is_200_and_reloads_scripts_flushed_by_a_restart(client, redis_client, ledger):
    assert client.get("/readyz").status_code == 200
    redis_client.script_flush()
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["status"] == "ready"
    assert all(redis_client.script_exists(*[b.script.sha for b in ledger.scripts.all()]))


def test_readyz_is_503_when_redis_is_unreachable():
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and r.json["reason"] == "RISK_UNAVAILABLE"


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_decisions_latency_kills_and_redis_errors(client, auth, new_order):
    client.post("/v1/orders", json=new_order("m1"), headers=auth("order-entry"))
    client.post("/v1/orders", json=new_order("m2", qty="999999"), headers=auth("order-entry"))
    client.post("/v1/orders", json=new_order("m3", qty=1.5), headers=auth("order-entry"))
    client.post("/v1/orders", json=new_order("m4"))  # 401: not a decision
    client.post("/v1/kill", json={"scope": "desk:EQ-CASH", "reason": "x"}, headers=auth("ops"))
    client.post("/v1/kill", json={"scope": "desk:EQ-CASH", "reason": "x"}, headers=auth("ops"))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.text
    d = "ledger_gateway_decisions_total"
    assert _sample(text, d, op="reserve", result="accepted", reason="OK") == 1
    assert _sample(text, d, op="reserve", result="rejected", reason="MAX_ORDER_QTY") == 1
    assert _sample(text, d, op="reserve", result="rejected", reason="INVALID_ORDER") == 1
    assert _sample(text, d) == 3
    latency = "ledger_gateway_request_seconds"  # a histogram: these are request counts
    requests = _sample(text, f"{latency}_count", op="reserve")
    in_last_bucket = _sample(text, f"{latency}_bucket", op="reserve", le="+Inf")
    assert (requests, in_last_bucket) == (4, 4)
    assert _sample(text, "ledger_gateway_kill_switch_total", op="kill", kind="desk") == 1
    assert _sample(text, "ledger_gateway_auth_failures_total", status="401") == 1


def test_metrics_count_redis_errors_and_unavailable_decisions(new_order):
    app = create_app({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    c = app.test_client()
    r = c.post("/v1/orders", json=new_order("e1"), headers={"Authorization": "Bearer llt_x"})
    assert r.status_code == 503
    text = c.get("/metrics").text
    assert _sample(text, "ledger_gateway_redis_errors_total") == 1
    assert _sample(text, "ledger_gateway_decisions_total", reason="RISK_UNAVAILABLE") == 1


def _flask_paths(app) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        out.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    return out


def test_openapi_describes_every_route_and_method_and_nothing_else(app, client):
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.json["openapi"].startswith("3.")
    doc = served.json
    described = {p: {m for m in ops if m != "parameters"} for p, ops in doc["paths"].items()}
    assert described == _flask_paths(app)


def test_openapi_refs_resolve_and_every_operation_answers_something(app):
    doc = document(app)
    refs = set(re.findall(r"#/components/schemas/([A-Za-z]+)", str(doc)))
    assert refs and refs <= set(doc["components"]["schemas"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method != "parameters":
                assert op["responses"], (path, method)
    assert set(doc["paths"]["/v1/orders"]["post"]["responses"]) >= {
        "201",
        "400",
        "401",
        "403",
        "503",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEDGER_REDIS_TIMEOUT_MS", "fast"),
        ("LEDGER_REDIS_TIMEOUT_MS", "0"),
        ("LEDGER_PREFIX", "{bad}"),
        ("LEDGER_REDIS_URL", "localhost"),
        ("LEDGER_DASHBOARD_REFRESH_MS", "5"),
    ],
)
def test_bad_settings_are_refused_at_start_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        create_app()


def test_an_unexpected_fault_is_a_json_500_and_never_an_accept(
    ledger, redis_url, tokens, new_order, monkeypatch
):
    from ledger.facade.client import Ledger

    def broken(self, order):
        raise RuntimeError("bug")

    monkeypatch.setattr(Ledger, "reserve", broken)
    app = create_app({"REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": 2000})
    r = app.test_client().post(
        "/v1/orders",
        json=new_order("x1"),
        headers={"Authorization": f"Bearer {tokens['order-entry']}"},
    )
    assert r.status_code == 500
    assert r.json["decision"] == "rejected" and r.json["reason"] == "INTERNAL_ERROR"
