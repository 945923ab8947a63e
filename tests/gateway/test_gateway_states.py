"""``/v1/states`` through the gateway: who may set and lift a state, and what it lists."""

from __future__ import annotations

import msgpack
import pytest

CONTROLS = "ledger:{ACME}:controls"


def _auto_disable(redis_client, scope: str, by: str) -> None:
    """The entry the fill throttle writes when it trips."""
    record = {
        "st": "disabled",
        "by": by,
        "why": "fill throttle",
        "t": 1_700_000_000_000,
        "auto": 1,
        "cause": "50 fills in 10 s",
    }
    redis_client.hset(CONTROLS, f"s|{scope}", msgpack.packb(record))


def test_ops_disables_and_re_enables_and_the_token_is_who(client, auth, ledger):
    body = {"scope": "strategy:MM-1", "state": "disabled", "reason": "runaway"}
    r = client.post("/v1/states", json=body, headers=auth("ops"))
    assert r.status_code == 200, r.json
    assert r.json == {
        "scope": "strategy:MM-1",
        "state": "disabled",
        "previous": "enabled",
        "already": False,
        "policy_state": "enabled",
        "by": "ops-alice",
        "reason": "runaway",
    }
    (state,) = ledger.states.list()
    assert (state.scope, state.by, state.reason) == ("strategy:MM-1", "ops-alice", "runaway")
    body = {"scope": "strategy:MM-1", "state": "enabled", "reason": "fixed"}
    r = client.post("/v1/states", json=body, headers=auth("ops"))
    assert r.status_code == 200 and r.json["previous"] == "disabled"
    assert ledger.states.list() == []


def test_get_states_shows_an_automatic_disable_with_its_cause(client, auth, redis_client):
    # MM-1 trades EQ-CASH only, the desk of the desk-head token.
    _auto_disable(redis_client, "strategy:MM-1", by="system:fill-throttle")
    for role in ("ops", "desk-head"):
        r = client.get("/v1/states", headers=auth(role))
        assert r.status_code == 200
        (s,) = r.json["states"]
        assert (s["scope"], s["firm"], s["state"], s["source"]) == (
            "strategy:MM-1",
            "ACME",
            "disabled",
            "runtime",
        )
        assert (s["by"], s["auto"], s["cause"]) == (
            "system:fill-throttle",
            True,
            "50 fills in 10 s",
        )


def test_the_identity_that_set_a_state_automatically_cannot_lift_it(
    client, auth, redis_client, snapshot
):
    _auto_disable(redis_client, "strategy:MM-1", by="ops-alice")
    body = {"scope": "strategy:MM-1", "state": "enabled", "reason": "looks fine"}
    before = snapshot()
    r = client.post("/v1/states", json=body, headers=auth("ops"))
    assert r.status_code == 403
    assert r.json["reason"] == "REENABLE_REFUSED" and "ops-alice" in r.json["message"]
    assert redis_client.hexists(CONTROLS, "s|strategy:MM-1")
    after = snapshot()
    # Only the refusal's audit record is new.
    assert {k for k in after if after[k] != before.get(k)} == {b"ledger:{ACME}:audit"}


@pytest.mark.parametrize("role", ["order-entry", "desk-head", "risk-admin"])
def test_only_ops_may_set_a_state(client, auth, snapshot, role):
    before = snapshot()
    body = {"scope": "strategy:MM-1", "state": "disabled", "reason": "r"}
    r = client.post("/v1/states", json=body, headers=auth(role))
    assert r.status_code == 403 and r.json["reason"] == "FORBIDDEN"
    assert snapshot() == before


BAD = {
    "missing reason": ({"scope": "strategy:MM-1", "state": "disabled"}, 400, "INVALID_REQUEST"),
    "empty reason": (
        {"scope": "strategy:MM-1", "state": "enabled", "reason": " "},
        400,
        "INVALID_REQUEST",
    ),
    "unknown state": (
        {"scope": "strategy:MM-1", "state": "paused", "reason": "r"},
        400,
        "INVALID_REQUEST",
    ),
    "a desk": (
        {"scope": "desk:EQ-CASH", "state": "disabled", "reason": "r"},
        400,
        "INVALID_REQUEST",
    ),
    "scope not a string": (
        {"scope": 7, "state": "disabled", "reason": "r"},
        400,
        "INVALID_REQUEST",
    ),
    "unknown field": (
        {"scope": "strategy:MM-1", "state": "disabled", "reason": "r", "by": "x"},
        400,
        "INVALID_REQUEST",
    ),
    "unknown strategy": (
        {"scope": "strategy:NOPE", "state": "disabled", "reason": "r"},
        404,
        "UNKNOWN_NODE",
    ),
}


@pytest.mark.parametrize(("body", "status", "reason"), BAD.values(), ids=BAD.keys())
def test_bad_state_requests_are_4xx_and_change_nothing(
    client, auth, snapshot, body, status, reason
):
    before = snapshot()
    r = client.post("/v1/states", json=body, headers=auth("ops"))
    assert r.status_code == status, r.json
    assert r.json["reason"] == reason and r.json["message"]
    assert snapshot() == before
