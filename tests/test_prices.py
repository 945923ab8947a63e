"""setPrices-3.lua, resumeSymbol-2.lua and ledger.prices: reference prices and the jump halt.

The tight policy gets ``reference_prices: {max_age_ms: 5000, max_jump_pct: "10"}``
(a halt beyond 1000 bps) through the policy parser.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from fractions import Fraction
from math import ceil
from typing import Any

import msgpack
import pytest
import redis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger import InvalidInput, Ledger, LedgerUnavailable, parse_policy
from ledger.errors import ReenableRefused
from ledger.facade.prices import MAX_SYMBOLS, PriceStatus
from ledger.policy.money import MAX_EXACT, Price
from ledger.store.embedded import free_port
from tests.fakeclock.plugin import Clock
from tests.helpers import TIGHT

T0 = 1_952_656_000_123


def doc(max_jump_pct: str | None = "10", firms: int = 1) -> dict[str, Any]:
    """TIGHT with reference prices; ``firms`` > 1 adds firms F2.. with one account each."""
    d = copy.deepcopy(TIGHT)
    if max_jump_pct is not None:
        d["reference_prices"] = {"max_age_ms": 5000, "max_jump_pct": max_jump_pct}
    for n in range(2, firms + 1):
        d["firms"].append(
            {"id": f"F{n}", "desks": [{"id": f"D{n}9", "accounts": [{"id": f"A{n}9"}]}]}
        )
    return d


@pytest.fixture
def px(redis_client: redis.Redis) -> Ledger:
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(parse_policy(doc(), source="tight"), by="test")
    return lg


def state(lg: Ledger) -> dict[bytes, Any]:
    """Every key's serialized value: equal means nothing changed."""
    return {k: lg.redis.dump(k) for k in sorted(lg.redis.scan_iter(count=1000))}


def audits(lg: Ledger, op: str) -> list[dict[str, Any]]:
    return [r for r in lg.audit_tail(1000) if r.get("op") == op]


def one(lg: Ledger, symbol: str, price: str, firm: str = "F1") -> Any:
    (row,) = [r for r in lg.prices.set({symbol: price}, by="feed-1") if r.firm == firm]
    return row


# -- set and get ------------------------------------------------------------------------


def test_set_then_get_gives_the_price_its_age_and_the_firm_max_age(px: Ledger) -> None:
    rows = px.prices.set({"AAPL": "187.250", "MSFT": 410}, by="feed-1")
    assert [(r.firm, r.symbol, r.price, r.status, r.jump_bps) for r in rows] == [
        ("F1", "AAPL", "187.25", PriceStatus.SET, None),
        ("F1", "MSFT", "410", PriceStatus.SET, None),
    ]
    got = {r.symbol: r for r in px.prices.get()}
    assert sorted(got) == ["AAPL", "MSFT"]
    assert got["AAPL"].price == "187.25" and got["MSFT"].price == "410"
    assert got["AAPL"].halt is None and got["AAPL"].max_age_ms == 5000
    assert 0 <= got["AAPL"].age_ms < 5000 and got["AAPL"].stale is False
    seconds, _ = px.redis.time()
    assert abs(got["AAPL"].set_at_ms - seconds * 1000) < 5000
    # Stored exactly as the layout says: numerator, scale, server time.
    rec = msgpack.unpackb(px.redis.hget("ledger:{F1}:prices", "AAPL"), raw=False)
    assert (rec["pn"], rec["ps"], rec["t"]) == (18725, 2, got["AAPL"].set_at_ms)


def test_one_audit_record_per_call_lists_every_symbol(px: Ledger) -> None:
    px.prices.set({"AAPL": "187.25", "MSFT": Decimal("410.5")}, by="feed-1")
    (rec,) = audits(px, "prices")
    assert rec["by"] == "feed-1" and rec["px"] == {"AAPL": "187.25", "MSFT": "410.5"}


def test_get_named_symbols_shows_a_missing_one_as_no_price(px: Ledger) -> None:
    px.prices.set({"AAPL": "187.25"}, by="feed-1")
    rows = px.prices.get(["XYZ", "AAPL"])
    assert [(r.symbol, r.price) for r in rows] == [("XYZ", None), ("AAPL", "187.25")]
    assert rows[0].stale is True and rows[0].age_ms is None
    assert px.prices.get([]) == []
    with pytest.raises(InvalidInput, match="symbol"):
        px.prices.get(["bad symbol"])


def test_age_and_staleness_follow_server_time(clock: Clock) -> None:
    lg = clock.ledger
    lg.load_policy(parse_policy(doc(), source="tight"), by="test")
    clock.set_ms(T0)
    lg.prices.set({"AAPL": "100"}, by="feed-1")
    clock.set_ms(T0 + 5000)
    (row,) = lg.prices.get(["AAPL"])
    assert (row.set_at_ms, row.age_ms, row.stale) == (T0, 5000, False)
    clock.set_ms(T0 + 5001)
    (row,) = lg.prices.get(["AAPL"])
    assert (row.age_ms, row.stale) == (5001, True)


# -- the jump halt ------------------------------------------------------------------------


@pytest.mark.parametrize("price", ["110", "90", "109.9999", "90.0001"])
def test_a_jump_up_to_the_limit_does_not_halt(px: Ledger, price: str) -> None:
    one(px, "AAPL", "100")
    row = one(px, "AAPL", price)
    assert row.status is PriceStatus.SET and row.jump_bps == 1000
    assert px.prices.get(["AAPL"])[0].halt is None
    assert audits(px, "halt") == []


@pytest.mark.parametrize(("price", "bps"), [("110.0001", 1001), ("89.9999", 1001), ("250", 15000)])
def test_a_jump_just_over_the_limit_halts_and_stores_the_price(
    px: Ledger, price: str, bps: int
) -> None:
    one(px, "AAPL", "100")
    row = one(px, "AAPL", price)
    assert row.status is PriceStatus.HALTED and row.jump_bps == bps
    (got,) = px.prices.get(["AAPL"])
    assert got.price == price
    assert got.halt is not None
    assert (got.halt.by, got.halt.from_price, got.halt.to_price) == ("feed-1", "100", price)
    pct = f"{bps // 100}.{bps % 100:02d}%"
    assert got.halt.why == f"reference price jumped {pct} from 100 to {price} (max 10.00%)"
    (rec,) = audits(px, "halt")
    assert (rec["symbol"], rec["by"], rec["why"]) == ("AAPL", "feed-1", got.halt.why)
    assert rec["from"] == {"pn": 100, "ps": 0}


def test_a_halt_persists_across_new_prices_which_are_still_stored(px: Ledger) -> None:
    one(px, "AAPL", "100")
    first = one(px, "AAPL", "120")
    assert first.status is PriceStatus.HALTED
    halt = px.prices.get(["AAPL"])[0].halt
    for price, bps in (("120.5", 42), ("120.5", 0), ("500", 31494)):
        row = one(px, "AAPL", price)
        assert row.status is PriceStatus.ALREADY_HALTED and row.jump_bps == bps
        (got,) = px.prices.get(["AAPL"])
        assert got.price == price and got.halt == halt
    assert len(audits(px, "halt")) == 1


def test_each_symbol_of_a_batch_is_judged_on_its_own(px: Ledger) -> None:
    px.prices.set({"AAPL": "100", "MSFT": "100"}, by="feed-1")
    rows = px.prices.set({"AAPL": "105", "MSFT": "111", "NEW": "1"}, by="feed-1")
    assert [(r.symbol, r.status, r.jump_bps) for r in rows] == [
        ("AAPL", PriceStatus.SET, 500),
        ("MSFT", PriceStatus.HALTED, 1100),
        ("NEW", PriceStatus.SET, None),
    ]


def test_without_a_max_jump_nothing_halts_but_the_jump_is_reported(
    redis_client: redis.Redis,
) -> None:
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(parse_policy(doc(max_jump_pct=None), source="tight"), by="test")
    one(lg, "AAPL", "1")
    row = one(lg, "AAPL", "1000")
    assert (row.status, row.jump_bps) == (PriceStatus.SET, 9_990_000)
    (got,) = lg.prices.get(["AAPL"])
    assert got.halt is None and got.max_age_ms is None and got.stale is None


def exact_jump(old: Price, new: Price) -> Fraction:
    a = Fraction(old.numerator, 10**old.scale)
    b = Fraction(new.numerator, 10**new.scale)
    return abs(b - a) * 10000 / a


prices = st.builds(
    Price,
    st.one_of(st.integers(1, 10**7), st.integers(1, MAX_EXACT)),
    st.one_of(st.integers(0, 6), st.integers(0, 28)),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(old=prices, new=prices, near=st.sampled_from([None, -1, 0, 1]))
def test_jump_and_halt_are_exact_at_any_scale(
    px: Ledger, old: Price, new: Price, near: int | None
) -> None:
    if near is not None:
        # Right at the 1000 bps limit, one unit of the finest scale either side.
        new = Price(old.numerator * 11000 + near, old.scale + 4)
        assume(0 < new.numerator <= MAX_EXACT and len(str(new)) <= 30)
    px.redis.delete("ledger:{F1}:prices")
    one(px, "X", str(old))
    row = one(px, "X", str(new))
    jump = exact_jump(old, new)
    assert row.jump_bps == ceil(jump)
    assert row.status is (PriceStatus.HALTED if jump > 1000 else PriceStatus.SET)


# -- resume ---------------------------------------------------------------------------------


def test_resume_clears_the_halt_and_is_audited_with_who_and_why(px: Ledger) -> None:
    one(px, "AAPL", "100")
    one(px, "AAPL", "150")
    result = px.prices.resume("AAPL", by="ops-alice", reason="feed checked, move is real")
    assert result.firms == ("F1",) and not result.already
    (got,) = px.prices.get(["AAPL"])
    assert got.halt is None and got.price == "150"
    (rec,) = audits(px, "resume")
    assert (rec["symbol"], rec["by"], rec["why"]) == (
        "AAPL",
        "ops-alice",
        "feed checked, move is real",
    )
    assert rec["halted_by"] == "feed-1" and rec["halted_why"].startswith("reference price jumped")
    # The next jump is measured from the stored 150, and trades go on below the limit.
    assert one(px, "AAPL", "160").status is PriceStatus.SET


def test_resume_of_a_symbol_that_is_not_halted_is_a_no_op(px: Ledger) -> None:
    one(px, "AAPL", "100")
    before = state(px)
    result = px.prices.resume("AAPL", by="ops-alice", reason="just in case")
    assert result.already and result.firms == ()
    assert state(px) == before


@pytest.mark.parametrize(
    ("by", "reason", "field"),
    [
        ("ops-alice", "", "reason"),
        ("ops-alice", "   ", "reason"),
        ("", "ok", "by"),
        ("ops", None, "reason"),
    ],
)
def test_resume_needs_who_and_why(px: Ledger, by: str, reason: Any, field: str) -> None:
    one(px, "AAPL", "100")
    one(px, "AAPL", "150")
    before = state(px)
    with pytest.raises(InvalidInput) as info:
        px.prices.resume("AAPL", by=by, reason=reason)
    assert info.value.field == field
    assert state(px) == before
    assert px.prices.get(["AAPL"])[0].halt is not None


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        ({"AAPL": "101", "bad symbol": "1"}, "symbol"),
        ({"AAPL": "101", "{F1}": "1"}, "symbol"),
        ({"AAPL": "101", "": "1"}, "symbol"),
        ({"AAPL": "101", "MSFT": 1.5}, "price of MSFT"),
        ({"AAPL": "101", "MSFT": "-1"}, "price of MSFT"),
        ({"AAPL": "101", "MSFT": "0"}, "price of MSFT"),
        ({"AAPL": "101", "MSFT": "12,5"}, "price of MSFT"),
        ({"AAPL": "101", "MSFT": None}, "price of MSFT"),
        ({"AAPL": "101", "MSFT": True}, "price of MSFT"),
        ({"AAPL": "101", "MSFT": Decimal("NaN")}, "price of MSFT"),
        ({}, "prices"),
        ({f"S{i}": "1" for i in range(MAX_SYMBOLS + 1)}, "prices"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    px: Ledger, batch: dict[str, Any], field: str
) -> None:
    one(px, "AAPL", "100")
    before = state(px)
    with pytest.raises(InvalidInput) as info:
        px.prices.set(batch, by="feed-1")
    assert info.value.field == field
    assert state(px) == before


def test_an_empty_by_is_refused(px: Ledger) -> None:
    before = state(px)
    with pytest.raises(InvalidInput, match="by"):
        px.prices.set({"AAPL": "1"}, by=" ")
    assert state(px) == before


def test_unreachable_redis_raises_ledger_unavailable() -> None:
    lg = Ledger(redis.Redis(port=free_port(), socket_connect_timeout=0.5), actor="test")
    with pytest.raises(LedgerUnavailable):
        lg.prices.set({"AAPL": "1"}, by="feed-1")
    with pytest.raises(LedgerUnavailable):
        lg.prices.get()
    with pytest.raises(LedgerUnavailable):
        lg.prices.resume("AAPL", by="ops", reason="r")


# -- several firms ----------------------------------------------------------------------------


def test_every_firm_gets_its_own_copy_and_its_own_halt(redis_client: redis.Redis) -> None:
    lg = Ledger(redis_client, actor="test")
    lg.load_policy(parse_policy(doc(firms=3), source="tight"), by="test")
    # F3 allows a larger jump than F1 and F2.
    redis_client.hset("ledger:{F3}:policy", "meta|px", msgpack.packb({"a": 5000, "j": 3000}))
    rows = lg.prices.set({"AAPL": "100"}, by="feed-1")
    assert [(r.firm, r.status) for r in rows] == [(f, PriceStatus.SET) for f in ("F1", "F2", "F3")]
    for firm in ("F1", "F2", "F3"):
        rec = msgpack.unpackb(redis_client.hget(f"ledger:{{{firm}}}:prices", "AAPL"), raw=False)
        assert (rec["pn"], rec["ps"]) == (100, 0)
    rows = lg.prices.set({"AAPL": "120"}, by="feed-1")
    assert {r.firm: r.status for r in rows} == {
        "F1": PriceStatus.HALTED,
        "F2": PriceStatus.HALTED,
        "F3": PriceStatus.SET,
    }
    assert {r.firm: r.halt is not None for r in lg.prices.get(["AAPL"])} == {
        "F1": True,
        "F2": True,
        "F3": False,
    }
    result = lg.prices.resume("AAPL", by="ops-alice", reason="checked")
    assert result.firms == ("F1", "F2")
    assert all(r.halt is None for r in lg.prices.get())


def test_no_policy_means_no_firm_and_nothing_stored(redis_client: redis.Redis) -> None:
    lg = Ledger(redis_client, actor="test")
    assert lg.prices.set({"AAPL": "1"}, by="feed-1") == []
    assert lg.prices.get() == [] and lg.prices.resume("AAPL", by="o", reason="r").already
    assert list(redis_client.scan_iter()) == []


@pytest.mark.parametrize("by", ["feed-1", "system:anything"])
def test_the_feed_that_halted_a_symbol_cannot_resume_it(px: Ledger, by: str) -> None:
    one(px, "AAPL", "100")
    one(px, "AAPL", "150")
    before = state(px)
    with pytest.raises(ReenableRefused):
        px.prices.resume("AAPL", by=by, reason="looks fine to me")
    # Nothing changed but the audit trail, which records the refusal.
    after = state(px)
    assert {k: v for k, v in after.items() if not k.endswith(b":audit")} == {
        k: v for k, v in before.items() if not k.endswith(b":audit")
    }
    assert {(r["by"], r["code"]) for r in audits(px, "resume")} == {(by, "REENABLE_REFUSED")}
