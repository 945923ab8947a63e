"""``POST`` and ``DELETE /v1/kill`` answer the server time the ledger stored."""

from __future__ import annotations

import pytest

from gateway import create_app
from ledger import load_policy_file
from ledger.store.tokens import Role, TokenStore
from tests.conftest import EXAMPLE_POLICY

#: Far from any real clock: an answer taken from the gateway's clock cannot match it.
SERVER_MS = 1_500_000_000_123


@pytest.mark.parametrize("scope", ["desk:EQ-CASH", "global"])
def test_kill_and_unkill_answer_the_stored_server_time(clock, scope):
    lg = clock.ledger
    lg.load_policy(load_policy_file(EXAMPLE_POLICY), by="test")
    ops = {"Authorization": f"Bearer {TokenStore(lg.redis).create(Role.OPS, 'ops-1')}"}
    client = create_app(
        {"REDIS_URL": clock.server.url, "REDIS_TIMEOUT_MS": 2000, "TESTING": True}
    ).test_client()
    body = {"scope": scope, "reason": "drill"}

    clock.set_ms(SERVER_MS)
    killed = client.post("/v1/kill", json=body, headers=ops)
    assert killed.status_code == 200
    assert killed.json["at_ms"] == SERVER_MS
    listed = {k["scope"]: k for k in client.get("/v1/kill", headers=ops).json["kills"]}
    assert listed[scope]["at_ms"] == SERVER_MS

    # Killed again later: the answer is still what the ledger keeps for the kill.
    clock.set_ms(SERVER_MS + 5_000)
    again = client.post("/v1/kill", json=body, headers=ops)
    listed = {k["scope"]: k for k in client.get("/v1/kill", headers=ops).json["kills"]}
    assert again.json["already"] is True
    assert again.json["at_ms"] == listed[scope]["at_ms"]

    clock.set_ms(SERVER_MS + 9_000)
    lifted = client.delete("/v1/kill", json=body, headers=ops)
    assert lifted.status_code == 200
    assert lifted.json["at_ms"] == SERVER_MS + 9_000
