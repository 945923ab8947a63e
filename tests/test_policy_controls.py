"""Policy keys of the pre-trade controls: what parses, and the message for what does not."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger import parse_policy
from ledger.errors import PolicyError

BASE: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": 2,
    "firms": [{"id": "ACME", "desks": [{"id": "EQ-CASH", "accounts": [{"id": "ACC-1"}]}]}],
    "strategies": [{"id": "MM-1", "accounts": ["ACC-1"]}],
    "traders": [{"id": "T-ALICE", "accounts": ["ACC-1"], "strategies": ["MM-1"]}],
}
PRICES = {"max_age_ms": 5000, "max_jump_pct": "10"}


def doc(**top: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    out.update(top)
    return out


def account(document: dict[str, Any]) -> dict[str, Any]:
    acc: dict[str, Any] = document["firms"][0]["desks"][0]["accounts"][0]
    return acc


def problems(document: object) -> list[str]:
    with pytest.raises(PolicyError) as exc:
        parse_policy(document, source="p.yaml")
    return exc.value.problems


def test_every_control_parses_into_the_model() -> None:
    d = doc(
        trading_day={"rolls_at": "17:00", "zone": "America/New_York"},
        reference_prices={"max_age_ms": 5000, "max_jump_pct": "12.5"},
        overrides={"max_duration": "4h"},
        symbol_groups={"tech": ["AAPL", "MSFT"]},
        tiers={"large": {"price_collar_bps": 50, "max_order_qty": 900, "symbols": ["AAPL"]}},
    )
    acc = account(d)
    acc.update(symbols=["group:tech", "XYZ"], venues=["XNAS"], state="reduce_only")
    acc["limits"] = {"max_symbol_notional": "100", "duplicate_window_ms": 250}
    d["strategies"][0]["state"] = "disabled"
    d["strategies"][0]["limits"] = {
        "fill_throttle": {"trigger_count": 5, "window_s": 10},
        "cancel_to_new": {"max_ratio": "2.5", "window_s": 60, "min_messages": 20},
        "max_daily_loss": "1000",
        "max_basket_notional": "99.99",
    }
    p = parse_policy(d)
    c = p.controls
    assert c.trading_day.roll_ms == 17 * 3_600_000 and c.max_override_ms == 4 * 3_600_000
    assert c.reference_prices is not None and c.reference_prices.max_jump_bps == 1250
    assert c.tier_of("AAPL") is not None and c.tier_of("MSFT") is None
    a = p.nodes["account:ACC-1"]
    assert a.symbols == {"AAPL", "MSFT", "XYZ"} and a.venues == {"XNAS"}
    assert a.state == "reduce_only" and a.limits.max_symbol_notional == 10000
    s = p.nodes["strategy:MM-1"]
    assert s.state == "disabled" and s.limits.max_daily_loss == 100000
    assert s.limits.cancel_to_new is not None and s.limits.cancel_to_new.max_ratio_hundredths == 250
    assert s.limits.fill_throttle is not None and s.limits.fill_throttle.trigger_count == 5
    assert s.limits.max_basket_notional == 9999


def tiers_doc(**tier: Any) -> dict[str, Any]:
    return doc(reference_prices=PRICES, tiers={"mid": {"price_collar_bps": 80, **tier}})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            doc(tiers={"mid": {"price_collar_bps": 80, "symbols": ["XYZ"]}}),
            "p.yaml: reference_prices: is required when tiers are set (max_age_ms, max_jump_pct)",
        ),
        (tiers_doc(), "p.yaml: tiers.mid.symbols: must list at least one symbol"),
        (
            doc(reference_prices=PRICES, tiers={"mid": {"symbols": ["XYZ"]}}),
            "p.yaml: tiers.mid: price_collar_bps is required",
        ),
        (
            doc(
                reference_prices=PRICES,
                tiers={
                    "a": {"price_collar_bps": 1, "symbols": ["XYZ"]},
                    "b": {"price_collar_bps": 1, "symbols": ["XYZ"]},
                },
            ),
            "p.yaml: tiers.b.symbols: symbol 'XYZ' is already in tier 'a'",
        ),
        (
            doc(reference_prices={"max_age_ms": 5000, "max_jump_pct": 10.5}),
            "p.yaml: reference_prices.max_jump_pct: must be a positive number with at most "
            "2 decimal places (write it as a quoted decimal string), got 10.5",
        ),
        (
            doc(reference_prices={"max_age_ms": 0, "max_jump_pct": "1"}),
            "p.yaml: reference_prices.max_age_ms: must be between 1 and 9007199254740991, got 0",
        ),
        (
            doc(trading_day={"rolls_at": "5pm"}),
            "p.yaml: trading_day.rolls_at: must be a quoted 24-hour time HH:MM, got '5pm'",
        ),
        (
            doc(trading_day={"zone": "Mars/Olympus"}),
            "p.yaml: trading_day.zone: must be an IANA time zone such as America/New_York, "
            "got 'Mars/Olympus'",
        ),
        (
            doc(overrides={"max_duration": 3600}),
            "p.yaml: overrides.max_duration: must be a positive duration such as 250ms, 30s, "
            "30m, 8h or 1d, got 3600",
        ),
    ],
)
def test_firm_wide_settings_refused_with_their_message(
    document: dict[str, Any], message: str
) -> None:
    assert problems(document) == [message]


def with_account(**fields: Any) -> dict[str, Any]:
    d = doc(symbol_groups={"tech": ["AAPL"]})
    account(d).update(fields)
    return d


ACC = "p.yaml: firms[0].desks[0].accounts[0]"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            with_account(state="paused"),
            f"{ACC}.state: must be one of enabled, disabled, reduce_only, got a string 'paused'",
        ),
        (with_account(symbols=[]), f"{ACC}.symbols: must list at least one symbol or group:NAME"),
        (
            with_account(symbols=["group:energy"]),
            f"{ACC}.symbols[0]: unknown symbol group 'energy'",
        ),
        (with_account(venues=[]), f"{ACC}.venues: must list at least one venue"),
        (
            with_account(limits={"duplicate_window_ms": 0}),
            f"{ACC}.limits.duplicate_window_ms: must be between 1 and 9007199254740991, got 0",
        ),
        (
            with_account(limits={"fill_throttle": {"trigger_count": 1, "window_s": 1}}),
            f"{ACC}.limits.fill_throttle: only a strategy can have this limit",
        ),
        (
            with_account(limits={"cancel_to_new": {"window_s": 60}}),
            f"{ACC}.limits.cancel_to_new: max_ratio is required",
        ),
        (
            with_account(limits={"cancel_to_new": {"max_ratio": "2", "window_s": 3601}}),
            f"{ACC}.limits.cancel_to_new.window_s: must be at most 3600, got 3601",
        ),
    ],
)
def test_node_settings_refused_with_their_message(document: dict[str, Any], message: str) -> None:
    assert problems(document) == [message]


def test_concentration_only_on_accounts_and_desks() -> None:
    d = doc()
    d["firms"][0]["limits"] = {"max_symbol_notional": "1"}
    assert problems(d) == [
        "p.yaml: firms[0].limits.max_symbol_notional: only an account or a desk can have this limit"
    ]
    d = doc()
    d["firms"][0]["desks"][0]["limits"] = {"max_symbol_notional": "1"}
    assert parse_policy(d).nodes["desk:EQ-CASH"].limits.max_symbol_notional == 100


def test_a_trader_has_no_state() -> None:
    d = doc()
    d["traders"][0]["state"] = "disabled"
    assert problems(d) == [
        "p.yaml: traders[0].state: unknown key (allowed: id, limits, accounts, strategies)"
    ]
