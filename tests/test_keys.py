"""Cluster readiness: every script call's keys map to one Redis Cluster slot.

The scripts of a real :class:`ledger.Ledger` are wrapped so that the keys it
really sends are recorded, for random firm, order and fill ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from ledger import Ledger, Order, parse_policy
from ledger.errors import InvalidInput
from ledger.reasons import Reason
from ledger.store.keys import ORDER_ID, Keys, check_id
from ledger.store.scripts import SCRIPT_NAMES

firm_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
order_ids = st.from_regex(ORDER_ID.pattern, fullmatch=True)

#: The plain global kill key of the default prefix (single-instance mode only).
PLAIN_GLOBAL_KILL = "ledger:kill:global"
#: Scripts of a policy load that touch no firm's keys: the routes (their own
#: ``{routes}`` slot) and the policy document; each still one slot per call.
POLICY_WIDE = {"swap_routes": "{routes}", "publish_policy": "ledger:policy"}


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


@dataclass
class Call:
    script: str
    keys: list[str]


@dataclass
class _Recorder:
    """Stands in for one ``ScriptSet`` attribute: records the keys, then delegates."""

    bound: Any
    calls: list[Call] = field(default_factory=list)

    def __call__(self, keys: list[str], args: list[Any], client: Any = None) -> Any:
        self.calls.append(
            Call(self.bound.name, [k if isinstance(k, str) else k.decode() for k in keys])
        )
        return self.bound(keys, args, client=client)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bound, name)


def recording(lg: Ledger) -> list[Call]:
    calls: list[Call] = []
    for bound in lg.scripts.all():
        setattr(lg.scripts, bound.name, _Recorder(bound, calls))
    return calls


def policy_for(firms: list[str]) -> Any:
    """One desk, account, strategy and trader per firm; one generous firm limit (for an
    override to change), so orders pass."""
    return parse_policy(
        {
            "version": 1,
            "currency": "USD",
            "firms": [
                {
                    "id": f,
                    "limits": {"max_open_orders": 1000},
                    "desks": [{"id": f"D{i}", "accounts": [{"id": f"A{i}"}]}],
                }
                for i, f in enumerate(firms)
            ],
            "strategies": [{"id": f"S{i}", "accounts": [f"A{i}"]} for i in range(len(firms))],
            "traders": [
                {"id": f"T{i}", "accounts": [f"A{i}"], "strategies": [f"S{i}"]}
                for i in range(len(firms))
            ],
        }
    )


def exercise(lg: Ledger, firms: list[str], oids: list[str]) -> None:
    """Every operation that runs a script, for every firm, checking each answer."""
    lg.load_policy(policy_for(firms), by="test")
    for i, firm in enumerate(firms):
        a, b, c = (f"{oid}-{i}" if len(oid) < 120 else f"{i}{oid[1:]}" for oid in oids)
        assert ORDER_ID.fullmatch(a) and ORDER_ID.fullmatch(b) and ORDER_ID.fullmatch(c)

        def order(oid: str, i: int = i) -> Order:
            return Order(oid, f"T{i}", f"S{i}", f"A{i}", "XYZ", "buy", "10", "1.5")

        assert lg.reserve(order(a)).accepted
        assert lg.replace(a, "20", "1.25").accepted
        assert lg.cancel_request(a).accepted
        assert lg.fill(a, "fill-1", "5", "1.25").ok
        assert lg.release(a, "cancelled").ok
        assert lg.reserve(order(b)).accepted
        assert lg.fill(b, "fill-2", "10", "1.5").ok  # a closing fill
        killed = lg.kill(f"desk:D{i}", by="test", reason="keys")
        assert not killed.already
        assert lg.reserve(order(c)).reason is Reason.KILL_SWITCH
        lg.unkill(f"desk:D{i}", by="test", reason="keys")
        assert lg.kill(f"firm:{firm}", by="test", reason="keys").open_orders == ()
        lg.unkill(f"firm:{firm}", by="test", reason="keys")
        # The order the kill refused, open at the venue all the same: reconciled.
        venue_copy = {"order_id": c, "account": f"A{i}", "trader": f"T{i}", "strategy": f"S{i}"}
        venue_copy |= {"symbol": "XYZ", "side": "buy", "qty": "10", "price": "1.5"}
        rec = lg.reconcile([{**venue_copy, "status": "open"}], by="test", apply=True)
        assert [(r.reason, r.created) for r in rec.repairs] == [(Reason.OK, True)]
        assert not lg.states.set(f"strategy:S{i}", "disabled", by="test", reason="keys").already
        assert not lg.states.enable(f"strategy:S{i}", by="test", reason="keys").already
        ov = lg.overrides.request(
            f"firm:{firm}", "max_open_orders", 999, duration="1m", ticket="keys", by="test"
        )
        # Every firm counts its own OV-<n>, so with several firms the id needs its firm.
        assert lg.overrides.cancel(ov.id, by="test", firm=firm).status == "cancelled"
        assert lg.stress.on(f"firm:{firm}", "0.5", by="test", reason="keys").factor_millionths
        assert lg.stress.off(f"firm:{firm}", by="test", reason="keys").previous_millionths
        assert lg.sweep(firm=firm) == {firm: 0}
    assert lg.prices.set({"XYZ": "1.5"}, by="test")
    assert lg.prices.resume("XYZ", by="test", reason="keys").already
    lg.kill("global", by="test", reason="keys")
    lg.unkill("global", by="test", reason="keys")


@pytest.fixture
def fresh(redis_client: redis.Redis) -> Any:
    """A ledger on an empty database, made anew for each hypothesis example."""

    def make(cluster: bool) -> tuple[Ledger, list[Call]]:
        redis_client.flushall()
        lg = Ledger(redis_client, cluster=cluster, actor="test")
        return lg, recording(lg)

    return make


examples = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@examples
@given(
    st.lists(firm_ids, min_size=1, max_size=3, unique=True),
    st.lists(order_ids, min_size=3, max_size=3, unique=True),
)
def test_cluster_mode_every_call_maps_to_one_slot(
    fresh: Any, firms: list[str], oids: list[str]
) -> None:
    lg, calls = fresh(True)
    exercise(lg, firms, oids)
    assert {c.script for c in calls} == set(SCRIPT_NAMES)
    for call in calls:
        slots = {slot(k) for k in call.keys}
        assert len(slots) == 1, (call.script, call.keys)
        if call.script in POLICY_WIDE:
            assert slots == {slot(POLICY_WIDE[call.script])}, call
            continue
        # ...and that one slot is a firm's: the tag of the firm it concerns.
        assert any(
            slots == {slot(f"{{{f}}}")} and all(f"{{{f}}}" in k for k in call.keys) for f in firms
        ), call
        assert PLAIN_GLOBAL_KILL not in call.keys


@examples
@given(
    st.lists(firm_ids, min_size=1, max_size=3, unique=True),
    st.lists(order_ids, min_size=3, max_size=3, unique=True),
)
def test_single_instance_only_the_plain_global_kill_leaves_the_firm_slot(
    fresh: Any, firms: list[str], oids: list[str]
) -> None:
    lg, calls = fresh(False)
    exercise(lg, firms, oids)
    assert {c.script for c in calls} == set(SCRIPT_NAMES)
    outside: set[str] = set()
    for call in calls:
        if call.script in POLICY_WIDE:
            assert {slot(k) for k in call.keys} == {slot(POLICY_WIDE[call.script])}, call
            continue
        firm = next(f for f in firms if f"{{{f}}}" in call.keys[0])
        outside |= {k for k in call.keys if slot(k) != slot(f"{{{firm}}}")}
        if call.script in ("reserve", "replace", "kill"):
            assert PLAIN_GLOBAL_KILL in call.keys
    assert outside == {PLAIN_GLOBAL_KILL}


def test_key_builders_share_the_firm_slot() -> None:
    for cluster in (False, True):
        k = Keys(cluster=cluster)
        for firm in ("ACME", "a", "x.y_z-1", "9" * 64):
            tagged = [
                k.policy(firm),
                k.policy_next(firm, 7),
                k.kills(firm),
                k.agg(firm),
                k.open_index(firm),
                k.order(firm, "o{1}"),
                k.audit(firm),
            ]
            if cluster:
                tagged.append(k.global_kill(firm))
            assert {slot(key) for key in tagged} == {slot(f"{{{firm}}}")}
        assert k.global_kill() == PLAIN_GLOBAL_KILL
    assert Keys().global_kill("ACME") == PLAIN_GLOBAL_KILL
    assert Keys(cluster=True).global_kill("ACME") == "ledger:{ACME}:kill:global"
    assert Keys(prefix="p", cluster=True).order("F", "o1") == "p:{F}:order:o1"


@pytest.mark.parametrize("bad", ["a{b", "a}b", "{F}", "has space", "", "x" * 129])
def test_order_ids_cannot_move_the_hash_tag(bad: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_id(bad, "order_id")
    assert exc.value.field == "order_id"


@pytest.mark.parametrize("cluster", [False, True], ids=["single", "cluster"])
def test_global_kill_stops_a_firm_loaded_after_it(redis_client: redis.Redis, cluster: bool) -> None:
    lg = Ledger(redis_client, cluster=cluster, actor="test")
    lg.load_policy(policy_for(["F0"]), by="test")
    lg.kill("global", by="test", reason="halt")
    lg.load_policy(policy_for(["F0", "F1"]), by="test")
    assert [k.scope for k in lg.kills()] == ["global"]
    assert (
        lg.reserve(Order("o0", "T0", "S0", "A0", "XYZ", "buy", "1", "1")).reason
        is Reason.KILL_SWITCH
    )
    assert (
        lg.reserve(Order("o1", "T1", "S1", "A1", "XYZ", "buy", "1", "1")).reason
        is Reason.KILL_SWITCH
    )


@pytest.mark.parametrize("cluster", [False, True], ids=["single", "cluster"])
def test_global_kill_before_any_policy_stops_the_first_load(
    redis_client: redis.Redis, cluster: bool
) -> None:
    lg = Ledger(redis_client, cluster=cluster, actor="test")
    lg.kill("global", by="test", reason="halt before open")
    lg.load_policy(policy_for(["F0"]), by="test")
    order = Order("o0", "T0", "S0", "A0", "XYZ", "buy", "1", "1")
    assert lg.reserve(order).reason is Reason.KILL_SWITCH
    lg.unkill("global", by="test", reason="open")
    assert lg.reserve(Order("o1", "T0", "S0", "A0", "XYZ", "buy", "1", "1")).accepted
