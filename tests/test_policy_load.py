"""loadPolicy-3.lua and the facade's policy swap."""

from __future__ import annotations

import copy
import threading

import pytest
import redis

from ledger import Ledger, Reason, load_policy_file
from tests.conftest import EXAMPLE_POLICY
from tests.helpers import TIGHT, agg, load, order, tight_policy


def test_load_records_revision_who_and_sha(redis_client):
    lg = Ledger(redis_client)
    policy = load_policy_file(EXAMPLE_POLICY)
    assert lg.load_policy(policy, by="alice", source="p.yaml") == 1
    assert lg.load_policy(policy, by="bob", source="p.yaml") == 2
    doc = redis_client.hgetall("ledger:policy")
    assert (doc[b"rev"], doc[b"by"], doc[b"sha"]) == (b"2", b"bob", policy.sha256.encode())
    loads = [r for r in lg.audit_tail(20) if r["op"] == "policy_load"]
    assert [(r["rev"], r["by"]) for r in loads if r["stream"] == "ledger:audit"] == [
        (1, "alice"),
        (2, "bob"),
    ]
    firm = [r for r in loads if r["stream"] == "ledger:{ACME}:audit"]
    assert [(r["rev"], r["previous"]) for r in firm] == [("1", None), ("2", "1")]


def test_new_limits_apply_on_the_next_decision(redis_client):
    lg = Ledger(redis_client)
    load(lg)
    assert lg.reserve(order("o1", qty="600", price="1")).accepted
    doc = copy.deepcopy(TIGHT)
    doc["firms"][0]["desks"][0]["accounts"][0]["limits"]["max_order_qty"] = 500
    load(Ledger(redis_client), doc)
    d = lg.reserve(order("o2", qty="600", price="1"))
    assert (d.reason, d.limit) == (Reason.MAX_ORDER_QTY, 500)


def test_a_firm_dropped_from_the_policy_refuses_orders_but_keeps_its_open_ones(redis_client):
    lg = Ledger(redis_client)
    load(lg)
    assert lg.reserve(order("o1")).accepted
    doc = {
        "version": 1,
        "currency": "USD",
        "firms": [{"id": "F2", "desks": [{"id": "X", "accounts": [{"id": "B1"}]}]}],
        "strategies": [{"id": "S1", "accounts": ["B1"]}],
        "traders": [{"id": "T1", "accounts": ["B1"], "strategies": ["S1"]}],
    }
    load(Ledger(redis_client), doc)
    fresh = Ledger(redis_client)
    d = fresh.reserve(order("o2"))
    assert (d.reason, d.scope) == (Reason.UNKNOWN_NODE, "account:A1")
    assert redis_client.hget("ledger:{F1}:policy", "meta|removed") == b"1"
    # The open order of the old firm can still be released.
    assert fresh.release("o1", reason="cleanup").reason == Reason.OK
    assert agg(fresh, "desk:D1", firm="F1").n == 0


def test_swap_refuses_a_staging_copy_of_another_revision(redis_client):
    lg = Ledger(redis_client)
    load(lg)
    redis_client.hset("ledger:{F1}:policy:next", mapping={"meta|rev": "99"})
    code, _ = lg.scripts.load_policy(
        ["ledger:{F1}:policy", "ledger:{F1}:policy:next", "ledger:{F1}:audit"],
        ["7", "sha", "me", "src", 1000],
    )
    assert code == b"NO_POLICY"
    assert redis_client.hget("ledger:{F1}:policy", "meta|rev") == b"1"


def test_decisions_see_old_or_new_policy_never_a_mix(redis_client):
    """Two revisions differ in two shadow limits of two nodes: every decision, taken
    while another thread keeps swapping them, reports a pair from one revision."""
    docs = []
    for qty_cap, gross_cap in ((50, "40"), (70, "60")):
        doc = copy.deepcopy(TIGHT)
        doc["strategies"][0].pop("limits")
        doc["firms"][0]["desks"][0]["accounts"][0]["limits"] = {
            "max_order_qty": qty_cap,
            "shadow": True,
        }
        doc["traders"][0]["limits"] = {"max_gross_notional": gross_cap, "shadow": True}
        docs.append(doc)
    lg = Ledger(redis_client)
    load(lg, docs[0])
    stop = threading.Event()

    def swap() -> None:
        loader = Ledger(redis.Redis(connection_pool=redis_client.connection_pool))
        i = 0
        while not stop.is_set() and i < 400:
            load(loader, docs[i % 2])
            i += 1

    thread = threading.Thread(target=swap)
    thread.start()
    pairs = set()
    try:
        for i in range(300):
            d = lg.reserve(order(f"o{i}", qty="100", price="1"))
            assert d.accepted
            pairs.add(tuple(b.limit for b in d.shadow))
            lg.release(f"o{i}", reason="x")
    finally:
        stop.set()
        thread.join()
    assert pairs <= {(50, 4000), (70, 6000)}
    assert pairs, "no decision was taken"


@pytest.mark.parametrize("count", [1])
def test_policy_cache_follows_loads_by_other_processes(redis_client, count):
    lg = Ledger(redis_client)
    load(lg)
    doc = copy.deepcopy(TIGHT)
    doc["firms"][0]["desks"][1]["accounts"].append({"id": "A4"})
    doc["strategies"][0]["accounts"].append("A4")
    doc["traders"][0]["accounts"].append("A4")
    load(Ledger(redis_client), doc)
    assert lg.reserve(order("o1", account="A4")).accepted
    assert agg(lg, "desk:D2").n == count


def test_a_new_client_routes_without_fetching_the_whole_policy(redis_client):
    load(Ledger(redis_client))
    fresh = Ledger(redis_client)
    assert fresh.reserve(order("o1")).accepted
    assert fresh.fill("o1", "f1", qty="1", price="100").ok
    # Routing came from the per-account routes; the policy document was never read.
    assert fresh._policy is None


def test_orders_of_a_firm_added_later_are_found_by_an_older_client(redis_client):
    old = Ledger(redis_client)
    load(old)
    assert old.reserve(order("o1")).accepted  # old now knows one firm: F1
    doc = copy.deepcopy(TIGHT)
    doc["firms"].append({"id": "F2", "desks": [{"id": "X2", "accounts": [{"id": "B2"}]}]})
    doc["strategies"].append({"id": "S9", "accounts": ["B2"]})
    doc["traders"].append({"id": "T9", "accounts": ["B2"], "strategies": ["S9"]})
    other = Ledger(redis_client)
    load(other, doc)
    assert other.reserve(order("o2", trader="T9", strategy="S9", account="B2")).accepted
    assert old.fill("o2", "f1", qty="1", price="100").ok
    assert old.release("o2", reason="cancelled").released > 0
    assert old.release("o1", reason="cancelled").released > 0


def test_prefetched_routes_make_every_decision_one_call(redis_client, monkeypatch):
    load(Ledger(redis_client))
    fresh = Ledger(redis_client)
    fresh.ping()  # loads every script, as the gateway's readiness check does
    assert fresh.prefetch_routes() == len(tight_policy().nodes)
    sent = []
    real = redis.connection.Connection.send_command

    # Every command this process sends, on any connection (a script call's
    # connection is the client's own, not always through execute_command).
    def counting(self, *args, **kwargs):
        sent.append(args[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.Connection, "send_command", counting)
    assert fresh.reserve(order("o1", account="A2")).accepted
    assert sent == ["FCALL"]


def test_a_swap_never_goes_back_to_an_older_revision(redis_client):
    lg = Ledger(redis_client)
    load(lg)
    load(lg)
    staged = lg.keys.policy_next("F1", 1)
    redis_client.hset(staged, mapping={"meta|rev": "1", "F1": "old"})
    code, live = lg.scripts.load_policy(
        ["ledger:{F1}:policy", staged, "ledger:{F1}:audit"], ["1", "sha", "me", "src", 1000]
    )
    assert (code, live) == (b"NO_POLICY", b"2")
    assert redis_client.hget("ledger:{F1}:policy", "meta|rev") == b"2"
    assert not redis_client.exists(staged), "a refused staging copy is deleted"
    staged = lg.keys.routes_next(1)
    redis_client.hset(staged, mapping={"meta|rev": "1"})
    assert lg.scripts.swap_routes([lg.keys.routes(), staged], ["1"]) == [b"NO_POLICY", b"2"]
    assert not redis_client.exists(staged)
    doc = lg.scripts.publish_policy([lg.keys.policy_doc()], ["1", "by", "late"])
    assert doc == [b"NO_POLICY", b"2"]
    assert redis_client.hget("ledger:policy", "by") == b"test"


def test_live_policy_keys_never_expire_and_no_staging_copy_stays(redis_client):
    lg = Ledger(redis_client)
    load(lg)
    load(lg)
    assert redis_client.ttl("ledger:{F1}:policy") == -1
    assert redis_client.ttl("ledger:{routes}") == -1
    assert redis_client.ttl("ledger:policy") == -1
    assert list(redis_client.scan_iter(match="*next*")) == []
