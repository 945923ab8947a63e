"""Governed overrides against a real server: four eyes, expiry to the millisecond, audit.

The tight policy (tests/helpers.py): desk D1 max_gross_notional 50000 USD,
account A1 max_order_qty 1000 and max_order_notional 20000, trader T1
max_gross_notional 40000. Money is minor units (cents) once stored.
"""

from __future__ import annotations

import copy
from typing import Any

import msgpack
import pytest
import redis

from ledger import Ledger
from ledger.errors import InvalidInput, UnknownScope
from ledger.facade.overrides import OverrideRefused, Status, UnknownOverride
from ledger.reasons import Reason
from tests.fakeclock.plugin import Clock
from tests.helpers import TIGHT, load, order

MIN = 60_000
T0 = 1_952_656_000_000


def in_force(lg: Ledger, scope: str, firm: str = "F1") -> dict[str, Any]:
    blob = lg.redis.hget(lg.keys.controls(firm), f"o|{scope}")
    return msgpack.unpackb(blob, raw=False) if blob else {}


def audit(lg: Ledger, firm: str = "F1") -> list[dict[str, Any]]:
    """The firm's override records, oldest first."""
    out = []
    for _, fields in lg.redis.xrange(lg.keys.audit(firm)):
        rec = msgpack.unpackb(fields[b"m"], raw=False)
        if str(rec.get("op", "")).startswith("override_"):
            out.append(rec)
    return out


def state(lg: Ledger, firm: str = "F1") -> dict[str, Any]:
    """Every override and control key of the firm, as stored."""
    keys = (lg.keys.controls(firm), lg.keys.overrides(firm))
    return {k: lg.redis.hgetall(k) for k in keys}


def increase(lg: Ledger, value: str = "30000", by: str = "alice", **kw: Any) -> Any:
    """An increase of A1's max_order_notional (20000)."""
    duration = kw.pop("duration", "30m")
    return lg.overrides.request(
        "account:A1", "max_order_notional", value, duration=duration, ticket="RISK-1", by=by, **kw
    )


# -- four eyes --------------------------------------------------------------------------


def test_a_decrease_applies_at_once(lg: Ledger) -> None:
    ov = lg.overrides.request(
        "desk:D1", "max_gross_notional", "30000.50", duration="30m", ticket="RISK-9", by="alice"
    )
    assert (ov.id, ov.status, ov.direction) == ("OV-1", Status.ACTIVE, "decrease")
    assert (ov.value, ov.policy_value) == (3_000_050, 5_000_000)
    assert ov.approved_at_ms == ov.requested_at_ms
    assert ov.until_ms == ov.approved_at_ms + 30 * MIN
    assert in_force(lg, "desk:D1") == {
        "max_gross_notional": {"v": 3_000_050, "u": ov.until_ms, "id": "OV-1"}
    }
    assert [r["op"] for r in audit(lg)] == ["override_request", "override_active"]


def test_an_increase_needs_two_distinct_approvers_other_than_the_requester(lg: Ledger) -> None:
    ov = increase(lg)
    assert (ov.status, ov.direction, ov.until_ms) == (Status.PENDING, "increase", None)
    assert in_force(lg, "account:A1") == {}

    with pytest.raises(OverrideRefused, match="alice requested OV-1") as own:
        lg.overrides.approve(ov.id, by="alice")
    assert own.value.field == "by"
    assert lg.overrides.get(ov.id).status is Status.PENDING

    first = lg.overrides.approve(ov.id, by="bob")
    assert (first.status, first.approvers) == (Status.PENDING, ("bob",))
    assert in_force(lg, "account:A1") == {}
    with pytest.raises(OverrideRefused, match="bob already approved OV-1"):
        lg.overrides.approve(ov.id, by="bob")
    assert lg.overrides.get(ov.id).approvers == ("bob",)

    second = lg.overrides.approve(ov.id, by="carol")
    assert (second.status, second.approvers) == (Status.ACTIVE, ("bob", "carol"))
    assert second.until_ms == second.approved_at_ms + 30 * MIN
    assert in_force(lg, "account:A1")["max_order_notional"] == {
        "v": 3_000_000,
        "u": second.until_ms,
        "id": "OV-1",
    }
    with pytest.raises(OverrideRefused, match="OV-1 is active, not pending") as late:
        lg.overrides.approve(ov.id, by="dave")
    assert late.value.field == "state"


def test_every_step_is_in_the_audit_stream(lg: Ledger) -> None:
    ov = increase(lg, reason="client block")
    with pytest.raises(OverrideRefused):
        lg.overrides.approve(ov.id, by="alice")
    lg.overrides.approve(ov.id, by="bob")
    lg.overrides.approve(ov.id, by="carol")
    rejected = increase(lg, value="25000")
    lg.overrides.reject(rejected.id, by="bob", reason="no ticket approval")
    records = audit(lg)
    assert [(r["op"], r.get("id"), r["by"], r["code"]) for r in records] == [
        ("override_request", "OV-1", "alice", "OK"),
        ("override_approve", "OV-1", "alice", "INVALID_ORDER"),
        ("override_approve", "OV-1", "bob", "OK"),
        ("override_approve", "OV-1", "carol", "OK"),
        ("override_active", "OV-1", "carol", "OK"),
        ("override_request", "OV-2", "alice", "OK"),
        ("override_reject", "OV-2", "bob", "OK"),
    ]
    request, refused, *_, active, _, reject = records
    assert request | {"t": 0} == request | {
        "scope": "account:A1",
        "limit": "max_order_notional",
        "value": 3_000_000,
        "old": 2_000_000,
        "dir": "increase",
        "for_ms": 30 * MIN,
        "ticket": "RISK-1",
        "why": "client block",
        "t": 0,
    }
    assert refused["refused"] == "by: alice requested OV-1; someone else must approve it"
    assert active["approvers"] == ["bob", "carol"] and active["in_force"] == 1
    assert active["u"] == lg.overrides.get("OV-1").until_ms
    assert reject["why"] == "no ticket approval"


def test_reject_and_cancel(lg: Ledger) -> None:
    ov = increase(lg)
    with pytest.raises(OverrideRefused, match="its requester cancels it instead"):
        lg.overrides.reject(ov.id, by="alice", reason="changed my mind")
    with pytest.raises(InvalidInput, match="reason"):
        lg.overrides.reject(ov.id, by="bob", reason=" ")
    done = lg.overrides.reject(ov.id, by="bob", reason="too large")
    assert (done.status, done.decided_by, done.decided_reason) == (
        Status.REJECTED,
        "bob",
        "too large",
    )
    with pytest.raises(OverrideRefused, match="OV-1 is rejected, not pending"):
        lg.overrides.approve(ov.id, by="carol")

    pending = increase(lg)
    with pytest.raises(OverrideRefused, match="only its requester alice may cancel OV-2"):
        lg.overrides.cancel(pending.id, by="bob")
    assert lg.overrides.cancel(pending.id, by="alice").status is Status.CANCELLED

    running = lg.overrides.request(
        "desk:D1", "max_open_orders", 3, duration="1h", ticket="T", by="alice"
    )
    assert in_force(lg, "desk:D1")
    ended = lg.overrides.cancel(running.id, by="alice", reason="done")
    assert (ended.status, ended.decided_reason) == (Status.CANCELLED, "done")
    assert in_force(lg, "desk:D1") == {}
    assert lg.redis.hexists(lg.keys.controls("F1"), "o|desk:D1") == 0


def test_counts_and_money_values(lg: Ledger) -> None:
    qty = lg.overrides.request(
        "account:A1", "max_order_qty", "900", duration_ms=1000, ticket="T", by="a"
    )
    assert (qty.value, qty.policy_value, qty.status) == (900, 1000, Status.ACTIVE)
    for bad, field in [
        ("0", "value"),
        ("-5", "value"),
        ("1.5", "value"),
        ("0.001", "value"),
        ("abc", "value"),
    ]:
        limit = "max_order_qty" if bad == "1.5" else "max_order_notional"
        with pytest.raises(InvalidInput) as exc:
            lg.overrides.request("account:A1", limit, bad, duration="1m", ticket="T", by="a")
        assert exc.value.field == field, bad
    with pytest.raises(InvalidInput, match="decimal places"):
        lg.overrides.request(
            "account:A1", "max_order_notional", "1.001", duration="1m", ticket="T", by="a"
        )


# -- refusals change nothing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scope": "desk:NOPE"}, UnknownScope, "desk:NOPE"),
        ({"scope": "nonsense"}, InvalidInput, "scope: must be KIND:ID"),
        ({"limit": "max_order_qty", "scope": "desk:D1"}, InvalidInput, "not set at desk:D1"),
        ({"limit": "max_daily_loss", "scope": "desk:D1"}, InvalidInput, "not set at desk:D1"),
        ({"limit": "messages"}, InvalidInput, "limit: must be one of"),
        ({"duration": "9h"}, InvalidInput, "9h is longer than overrides.max_duration \\(8h\\)"),
        ({"duration": "0m"}, InvalidInput, "duration: must be a positive duration"),
        ({"duration": "30"}, InvalidInput, "duration: must be a positive duration"),
        ({"duration": None, "duration_ms": 0}, InvalidInput, "duration_ms: must be a positive"),
        ({"duration_ms": 1000}, InvalidInput, "exactly one of duration_ms or duration"),
        ({"value": "50000"}, InvalidInput, "equals the policy value"),
        ({"ticket": ""}, InvalidInput, "ticket: must be a non-empty text"),
        ({"by": " "}, InvalidInput, "by: must be a non-empty text"),
        ({"value": 1.5}, InvalidInput, "not 1.5"),
    ],
)
def test_a_refused_request_changes_nothing(
    lg: Ledger, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {
        "scope": "desk:D1",
        "limit": "max_gross_notional",
        "value": "60000",
        "duration": "30m",
        "ticket": "RISK-1",
        "by": "alice",
    } | kwargs
    before = state(lg)
    with pytest.raises(error, match=message):
        lg.overrides.request(args.pop("scope"), args.pop("limit"), args.pop("value"), **args)
    assert state(lg) == before
    assert lg.overrides.list() == []


def test_the_policy_sets_the_longest_duration(redis_client: redis.Redis) -> None:
    lg = Ledger(redis_client, actor="test")
    load(lg, {**copy.deepcopy(TIGHT), "overrides": {"max_duration": "90m"}})
    assert increase(lg, duration="90m").duration_ms == 90 * MIN
    before = state(lg)
    with pytest.raises(InvalidInput, match=r"91m is longer than overrides.max_duration \(90m\)"):
        increase(lg, duration="91m")
    assert state(lg) == before
    refused = audit(lg)[-1]
    assert refused["code"] == "INVALID_ORDER" and refused["refused"].startswith("duration:")


def test_approval_rechecks_the_live_policy(lg: Ledger) -> None:
    ov = increase(lg)
    lg.overrides.approve(ov.id, by="bob")
    doc = copy.deepcopy(TIGHT)
    del doc["firms"][0]["desks"][0]["accounts"][0]["limits"]["max_order_notional"]
    load(lg, doc)
    with pytest.raises(InvalidInput, match="max_order_notional is not set at account:A1"):
        lg.overrides.approve(ov.id, by="carol")
    assert lg.overrides.get(ov.id).approvers == ("bob",)
    assert in_force(lg, "account:A1") == {}


def test_unknown_and_malformed_ids(lg: Ledger) -> None:
    with pytest.raises(UnknownOverride, match="OV-7: no such override"):
        lg.overrides.approve("OV-7", by="bob")
    for bad in ("OV-0", "ov-1", "OV-", "7", "OV-1 "):
        with pytest.raises(InvalidInput, match="must be an override id such as OV-7"):
            lg.overrides.approve(bad, by="bob")


def test_ids_are_per_firm_and_an_id_in_two_firms_needs_its_firm(lg: Ledger) -> None:
    doc = copy.deepcopy(TIGHT)
    doc["firms"].append(
        {
            "id": "F2",
            "limits": {"max_open_orders": 10},
            "desks": [{"id": "E1", "accounts": [{"id": "B1"}]}],
        }
    )
    doc["strategies"].append({"id": "S9", "accounts": ["B1"]})
    load(lg, doc)
    one = lg.overrides.request(
        "firm:F1", "max_gross_notional", "1", duration="1m", ticket="T", by="a"
    )
    two = lg.overrides.request("firm:F2", "max_open_orders", 20, duration="1m", ticket="T", by="a")
    assert (one.id, one.firm, two.id, two.firm) == ("OV-1", "F1", "OV-1", "F2")
    with pytest.raises(InvalidInput, match="OV-1 exists in firms F1, F2; name the firm"):
        lg.overrides.approve("OV-1", by="bob")
    assert lg.overrides.approve("OV-1", by="bob", firm="F2").approvers == ("bob",)
    assert lg.overrides.get("OV-1", firm="F1").approvers == ()
    assert [(o.firm, o.id) for o in lg.overrides.list()] == [("F1", "OV-1"), ("F2", "OV-1")]


# -- supersession and listing ---------------------------------------------------------


def test_a_newer_request_supersedes_an_older_one(lg: Ledger) -> None:
    first = lg.overrides.request(
        "desk:D1", "max_gross_notional", "40000", duration="1h", ticket="T", by="alice"
    )
    second = lg.overrides.request(
        "desk:D1", "max_gross_notional", "30000", duration="10m", ticket="T", by="bob"
    )
    assert in_force(lg, "desk:D1")["max_gross_notional"]["id"] == second.id
    statuses = {o.id: o.status for o in lg.overrides.list()}
    assert statuses == {first.id: Status.SUPERSEDED, second.id: Status.ACTIVE}


def test_an_old_increase_approved_late_does_not_undo_a_newer_decrease(lg: Ledger) -> None:
    up = increase(lg, value="30000")
    down = increase(lg, value="10000", by="risk")
    assert down.status is Status.ACTIVE
    lg.overrides.approve(up.id, by="bob")
    late = lg.overrides.approve(up.id, by="carol")
    assert late.status is Status.SUPERSEDED
    assert in_force(lg, "account:A1")["max_order_notional"]["id"] == down.id
    assert audit(lg)[-1]["in_force"] == 0


def test_listing_shows_pending_active_expired_and_decided(clock: Clock) -> None:
    lg = clock.ledger
    load(lg)
    clock.set_ms(T0)
    active = lg.overrides.request(
        "desk:D1", "max_gross_notional", "1000", duration="1s", ticket="T1", by="a", reason="r"
    )
    pending = increase(lg, by="b")
    rejected = increase(lg, value="35000", by="b")
    lg.overrides.reject(rejected.id, by="c", reason="no")
    listed = {o.id: o for o in lg.overrides.list()}
    assert [o.status for o in listed.values()] == [Status.ACTIVE, Status.PENDING, Status.REJECTED]
    assert listed[active.id].to_dict() == {
        "id": "OV-1",
        "firm": "F1",
        "scope": "desk:D1",
        "limit": "max_gross_notional",
        "value": 100_000,
        "policy_value": 5_000_000,
        "direction": "decrease",
        "duration_ms": 1000,
        "ticket": "T1",
        "requested_by": "a",
        "reason": "r",
        "approvers": [],
        "status": "active",
        "requested_at_ms": T0,
        "approved_at_ms": T0,
        "until_ms": T0 + 1000,
        "decided_by": None,
        "decided_reason": None,
        "decided_at_ms": None,
    }
    assert listed[rejected.id].decided_at_ms == T0
    clock.set_ms(T0 + 999)
    assert lg.overrides.get(active.id).status is Status.ACTIVE
    clock.set_ms(T0 + 1000)
    assert lg.overrides.get(active.id).status is Status.EXPIRED
    assert lg.overrides.get(pending.id).status is Status.PENDING
    with pytest.raises(OverrideRefused, match="OV-1 is expired"):
        lg.overrides.cancel(active.id, by="a")


# -- in force, to the millisecond (through reserve) -----------------------------------------

#: 250 x 100 USD on A1: 25000, over A1's max_order_notional (20000), under T1's gross (40000).
BIG = {"qty": "250", "price": "100"}


def test_an_approved_increase_lapses_at_exactly_u(clock: Clock) -> None:
    lg = clock.ledger
    load(lg)
    clock.set_ms(T0)
    refused = lg.reserve(order("o0", **BIG))
    assert (refused.reason, refused.scope) == (Reason.MAX_ORDER_NOTIONAL, "account:A1")
    ov = increase(lg, duration="30m")
    lg.overrides.approve(ov.id, by="bob")
    clock.set_ms(T0 + 5000)
    assert lg.reserve(order("o1", **BIG)).reason is Reason.MAX_ORDER_NOTIONAL
    active = lg.overrides.approve(ov.id, by="carol")
    u = T0 + 5000 + 30 * MIN
    assert active.until_ms == u

    clock.set_ms(u - 1)
    inside = lg.reserve(order("o2", **BIG))
    assert inside.accepted, inside
    assert lg.release("o2", "cancelled").ok
    clock.set_ms(u)
    after = lg.reserve(order("o3", **BIG))
    assert (after.reason, after.scope, after.limit) == (
        Reason.MAX_ORDER_NOTIONAL,
        "account:A1",
        2_000_000,
    )
    assert lg.overrides.get(ov.id).status is Status.EXPIRED


def test_a_decrease_lapses_at_exactly_u(clock: Clock) -> None:
    lg = clock.ledger
    load(lg)
    clock.set_ms(T0)
    ov = lg.overrides.request(
        "account:A1", "max_order_qty", 100, duration_ms=60_000, ticket="T", by="risk"
    )
    clock.set_ms(ov.until_ms - 1)
    capped = lg.reserve(order("o1", qty="101", price="1"))
    assert (capped.reason, capped.limit) == (Reason.MAX_ORDER_QTY, 100)
    clock.set_ms(ov.until_ms)
    assert lg.reserve(order("o2", qty="101", price="1")).accepted
