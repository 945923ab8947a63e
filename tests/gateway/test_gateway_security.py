"""The gateway's token secret, and the gateway and library on a Redis with ACL users and TLS.

The ACL tests start their own server from ``deploy/redis/users.acl`` (the file
docker-compose.yml runs), with the passwords filled in as
``deploy/redis/start.sh`` does; the TLS test makes its own CA and server
certificate with the ``openssl`` command.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import redis

from gateway import create_app
from ledger.tokens import DEV_SECRET, hash_token
from tests.gateway.conftest import ORDER


def _forge(redis_client: redis.Redis, token: str, digest: str) -> None:
    record = {"name": "mallory", "role": "ops", "desks": [], "created_at_ms": 0}
    redis_client.hset("ledger:tokens", f"t|{digest}", json.dumps(record))


def test_a_gateway_refuses_to_start_without_a_token_secret(redis_url, monkeypatch):
    monkeypatch.delenv("LEDGER_TOKEN_SECRET")
    monkeypatch.delenv("LEDGER_INSECURE_DEV_TOKENS", raising=False)
    with pytest.raises(ValueError, match="LEDGER_TOKEN_SECRET: not set"):
        create_app({"REDIS_URL": redis_url})
    with pytest.raises(ValueError, match="at least 16 characters"):
        create_app({"REDIS_URL": redis_url, "TOKEN_SECRET": "short"})
    monkeypatch.setenv("LEDGER_INSECURE_DEV_TOKENS", "1")
    assert create_app({"REDIS_URL": redis_url}).config["INSECURE_DEV_TOKENS"] == 1


def test_the_secret_is_read_verbatim_from_the_environment(redis_url, monkeypatch):
    # JSON parsing of LEDGER_* would make this the float 1e+21.
    monkeypatch.setenv("LEDGER_TOKEN_SECRET", "1000000000000000000000")
    monkeypatch.setenv("LEDGER_REDIS_PASSWORD", "true")
    app = create_app({"REDIS_URL": redis_url})
    assert app.config["TOKEN_SECRET"] == "1000000000000000000000"
    assert app.config["REDIS_PASSWORD"] == "true"


def test_tls_files_without_rediss_refuse_to_start(redis_url):
    with pytest.raises(ValueError, match="not rediss://"):
        create_app({"REDIS_URL": redis_url, "REDIS_TLS_CA": "/ca.pem"})


def test_a_token_hash_written_straight_into_redis_gets_401(client, ledger, redis_client, auth):
    forged = "llt_" + "F" * 43
    _forge(redis_client, forged, hashlib.sha256(forged.encode()).hexdigest())
    _forge(redis_client, forged, hash_token(forged, DEV_SECRET))
    answer = client.post(
        "/v1/kill",
        json={"scope": "global", "reason": "forged"},
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert answer.status_code == 401
    assert ledger.kills() == []
    assert client.post("/v1/orders", json=ORDER, headers=auth("order-entry")).status_code == 201
