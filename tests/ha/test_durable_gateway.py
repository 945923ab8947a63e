"""The gateway with durable acknowledgement: 503 RISK_UNAVAILABLE until replicas hold a change."""

from __future__ import annotations

import pytest
import redis

from gateway import create_app
from ledger import Ledger, load_policy_file
from ledger.store.tokens import Role, TokenStore
from tests.conftest import EXAMPLE_POLICY
from tests.gateway.conftest import ORDER
from tests.ha.conftest import Replicated


def test_an_order_is_503_while_the_replica_stalls_and_replayed_after(
    replicated: Replicated,
) -> None:
    client = redis.Redis.from_url(replicated.url)
    Ledger(client).load_policy(load_policy_file(EXAMPLE_POLICY), by="test")
    token = TokenStore(client).create(Role.ORDER_ENTRY, "oe-1")
    replicated.synced()
    app = create_app(
        {
            "REDIS_URL": replicated.url,
            "REDIS_TIMEOUT_MS": 2000,
            "DURABLE_REPLICAS": 1,
            "DURABLE_TIMEOUT_MS": 50,
            "TESTING": True,
        }
    )
    http = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    replicated.stall()
    r = http.post("/v1/orders", json=ORDER, headers=headers)
    assert r.status_code == 503
    assert (r.json["decision"], r.json["reason"]) == ("rejected", "RISK_UNAVAILABLE")
    assert "(durability)" in r.json["message"]
    replicated.resume()
    r = http.post("/v1/orders", json=ORDER, headers=headers)
    # A replay created nothing: 200, not 201 (gateway/orders.py).
    assert r.status_code == 200
    assert r.json["decision"] == "accepted" and r.json["replayed"] is True
    assert r.json["state"] == "open"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"DURABLE_REPLICAS": -1}, "LEDGER_DURABLE_REPLICAS must be a whole number"),
        (
            {"DURABLE_REPLICAS": 1, "DURABLE_TIMEOUT_MS": 0},
            "LEDGER_DURABLE_TIMEOUT_MS must be positive",
        ),
        ({"DURABLE_FSYNC": "yes"}, "LEDGER_DURABLE_FSYNC must be true or false"),
    ],
)
def test_bad_durability_settings_stop_the_gateway_at_start(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app(config)
