"""The policy model, offline: every validation rule has a fixture and an exact message."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import PolicyError
from ledger.policy.model import (
    LIMIT_NAMES,
    Limits,
    MessageLimits,
    Policy,
    load_policy_file,
    parse_policy,
)
from ledger.policy.money import MAX_EXACT

HERE = Path(__file__).resolve().parent
BAD = HERE / "policy" / "bad"
EXAMPLE = HERE.parent / "examples" / "policy.yaml"

_ID_RULE = (
    "must be 1-64 characters of letters, digits, '.', '_' or '-', "
    "starting with a letter or digit, got"
)

#: Every fixture in tests/policy/bad and the exact problems it raises, in order,
#: each after "<file path>: ".
EXPECTED: dict[str, list[str]] = {
    "bad_version": ["version: must be 1, got a string '1'"],
    "bad_currency": ["currency: must be a three-letter ISO code such as USD, got a string 'usd'"],
    "bad_minor_units": ["minor_units: must be a whole number from 0 to 8, got int 9"],
    "no_firms": ["firms: at least one firm is required"],
    "unknown_top_level_key": [
        "desks: unknown key (allowed: version, currency, minor_units, firms, strategies, traders, "
        "trading_day, reference_prices, overrides, symbol_groups, tiers, audit, retention, "
        "time_in_force)"
    ],
    "retention_not_a_duration": [
        "retention.closed_orders: must be a positive duration such as 250ms, 30s, 30m, 8h or "
        "1d, got 2 (or never)"
    ],
    "ioc_grace_not_a_duration": [
        "time_in_force.ioc_grace: must be a positive duration such as 250ms, 30s, 30m, 8h or "
        "1d, got '0s'"
    ],
    "audit_require_archive_not_bool": ["audit.require_archive: must be true or false, got 'yes'"],
    "tier_multiplier_float": [
        "tiers.fut.multiplier: must be a decimal number given as a string or integer, not 0.5"
    ],
    "tier_multiplier_too_fine": ["tiers.fut.multiplier: has more than 8 decimal places"],
    "tier_multiplier_zero": ["tiers.fut.multiplier: must be greater than zero"],
    "tier_multipliers_unknown_symbol": [
        "tiers.fut.multipliers: symbol 'NQ' is not in this tier's symbols"
    ],
    "unknown_limit_key": [
        "firms[0].desks[0].limits.max_gros_notional: unknown key (allowed: max_order_qty, "
        "max_open_orders, duplicate_window_ms, max_order_notional, max_gross_notional, "
        "max_net_notional, max_symbol_notional, max_daily_loss, max_basket_notional, messages, "
        "cancel_to_new, fill_throttle, shadow)"
    ],
    "bad_id_characters": [
        f"firms[0].desks[0].id: {_ID_RULE} a string 'EQ CASH'",
        f"firms[0].desks[0].accounts[0].id: {_ID_RULE} a string '{{ACC-1}}'",
        f"firms[0].desks[0].accounts[1].id: {_ID_RULE} a string '-ACC-2'",
    ],
    "missing_id": ["firms[0].desks[0].accounts[0].id: is required"],
    "drill_flag": [
        "firms[0].desks[0].accounts[0].drill: must be true or false, got a string 'yes'",
        "firms[1].drill: must be true or false, got int 1",
        "firms[2].desks[0].accounts[0].drill: every account of a drill firm is a drill account",
    ],
    "node_not_a_mapping": [
        "firms[0].desks[0].accounts[0]: must be a mapping, got a string 'ACC-1'"
    ],
    "duplicate_ids": [
        "firms[0].desks[1].id: duplicate desk id 'EQ-CASH'",
        "firms[0].desks[2].accounts[0].id: duplicate account id 'ACC-1'",
        "firms[1].id: duplicate firm id 'ACME'",
        "strategies[1].id: duplicate strategy id 'MM-1'",
        "traders[1].id: duplicate trader id 'T-ALICE'",
    ],
    "money_float": [
        "firms[0].limits.max_gross_notional: must be an amount given as a string or integer, "
        "not 1000000.5 (write amounts as quoted decimal strings)"
    ],
    "money_too_many_decimals": [
        "firms[0].limits.max_order_notional: has more than 2 decimal places"
    ],
    "money_malformed": [
        "firms[0].limits.max_order_notional: must be an amount such as 187.25, got '1,000'",
        "firms[0].limits.max_gross_notional: must not be negative, got '-5000'",
        "firms[0].limits.max_net_notional: must be an amount such as 187.25, got '1e6'",
    ],
    "money_too_large": [
        "firms[0].limits.max_gross_notional: exceeds the largest exact amount "
        "(9007199254740991 minor units)"
    ],
    "negative_count": [
        "firms[0].desks[0].limits.max_open_orders: must be between 0 and 9007199254740991, got -1",
        "firms[0].desks[0].accounts[0].limits.max_order_qty: "
        "must be between 0 and 9007199254740991, got -100",
    ],
    "non_integer_count": [
        "firms[0].desks[0].limits.max_open_orders: must be a whole number, got float 2.5",
        "firms[0].desks[0].accounts[0].limits.max_order_qty: "
        "must be a whole number, got a string '100'",
    ],
    "messages_unknown_window": [
        "strategies[0].limits.messages.per_min: unknown key (allowed: per_second, per_10s, "
        "per_minute, per_hour, a duration such as 5s, new, replace, cancel)"
    ],
    "messages_type_without_window": [
        "strategies[0].limits.messages.new: must set a window (per_second, per_10s, per_minute, "
        "per_hour, a duration such as 5s)",
        "strategies[0].limits.messages.cancel.per_hr: unknown key (allowed: per_second, per_10s, "
        "per_minute, per_hour, a duration such as 5s)",
        "strategies[0].limits.messages.cancel: must set a window (per_second, per_10s, "
        "per_minute, per_hour, a duration such as 5s)",
    ],
    "messages_window_not_tens": [
        "strategies[0].limits.messages.15ms: a window must be a whole number of 10 ms (its ten "
        "buckets are whole ms) and at most 1d"
    ],
    "messages_window_too_long": [
        "strategies[0].limits.messages.new.2d: a window must be a whole number of 10 ms (its ten "
        "buckets are whole ms) and at most 1d"
    ],
    "messages_window_twice": [
        "strategies[0].limits.messages.60s: is the same window as per_minute"
    ],
    "messages_type_empty": ["strategies[0].limits.messages.cancel: must be a mapping, got nothing"],
    "messages_empty": [
        "firms[0].limits.messages: must set a window (per_second, per_10s, per_minute, per_hour, "
        "a duration such as 5s) or a message type (new, replace, cancel)"
    ],
    "messages_zero": [
        "firms[0].limits.messages.per_second: must be between 1 and 9007199254740991, got 0",
        "firms[0].limits.messages.replace.per_10s: must be between 1 and 9007199254740991, got 0",
    ],
    "shadow_unknown_limit": ["firms[0].limits.shadow[0]: unknown limit 'max_gros_notional'"],
    "shadow_unset_limit": [
        "firms[0].limits.shadow[0]: limit 'max_net_notional' is not set at this node"
    ],
    "shadow_not_a_list": [
        "firms[0].limits.shadow: must be true, false or a list of limit names, "
        "got a string 'max_net_notional'"
    ],
    "shadow_true_without_limits": [
        "firms[0].limits.shadow: is true but no limit is set at this node"
    ],
    "strategy_unknown_account": ["strategies[0].accounts[1]: unknown account 'ACC-9'"],
    "trader_unknown_account": ["traders[0].accounts[0]: unknown account 'ACC-9'"],
    "trader_unknown_strategy": ["traders[0].strategies[1]: unknown strategy 'MM-2'"],
    "strategy_without_accounts": ["strategies[0].accounts: at least one account is required"],
    "trader_without_strategies": ["traders[0].strategies: at least one strategy is required"],
    "strategy_two_firms": [
        "strategies[0].accounts: all accounts must belong to one firm, got ['ACME', 'GLOBEX']"
    ],
    "trader_two_firms": [
        "traders[0].strategies[1]: strategy 'FX-ARB' belongs to firm 'GLOBEX', "
        "not to firm 'ACME' of the trader's accounts"
    ],
    "invalid_yaml": ["not valid YAML (line 7, column 5): expected ',' or '}', but got '<scalar>'"],
    "duplicate_yaml_key": ["not valid YAML (line 7, column 5): found duplicate key 'limits'"],
    "not_a_mapping": ["the policy must be a mapping, got a list"],
    "empty": ["the policy must be a mapping, got nothing"],
    "not_utf8": ["cannot read: not UTF-8 text (byte 54)"],
}

#: The sample policy of the ledger's specification, verbatim.
SPEC_SAMPLE = """\
version: 1
currency: USD
minor_units: 2            # money is kept as integer cents
firms:
  - id: ACME
    limits: {max_gross_notional: "50000000", max_net_notional: "20000000"}
    desks:
      - id: EQ-CASH
        limits: {max_gross_notional: "10000000", max_open_orders: 500}
        accounts:
          - id: ACC-1
            limits: {max_order_notional: "1000000", max_order_qty: 100000}
strategies:
  - id: MM-1
    accounts: [ACC-1]
    limits: {messages: {per_second: 50, per_10s: 300}}
traders:
  - id: T-ALICE
    accounts: [ACC-1]
    strategies: [MM-1]
    limits: {max_gross_notional: "2000000"}
"""

#: A small valid document to vary in the tests below.
BASE: dict[str, Any] = {
    "version": 1,
    "currency": "USD",
    "minor_units": 2,
    "firms": [{"id": "ACME", "desks": [{"id": "EQ-CASH", "accounts": [{"id": "ACC-1"}]}]}],
    "strategies": [{"id": "MM-1", "accounts": ["ACC-1"]}],
    "traders": [{"id": "T-ALICE", "accounts": ["ACC-1"], "strategies": ["MM-1"]}],
}


def doc(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    out.update(changes)
    return out


def with_limits(limits: dict[str, Any], **top: Any) -> dict[str, Any]:
    """BASE with ``limits`` at the firm."""
    out = doc(**top)
    out["firms"][0]["limits"] = limits
    return out


def problems(document: object) -> list[str]:
    with pytest.raises(PolicyError) as exc:
        parse_policy(document, source="p.yaml")
    return exc.value.problems


# -- bad fixtures ---------------------------------------------------------------


def test_every_fixture_has_its_expected_messages() -> None:
    assert sorted(p.stem for p in BAD.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_fixture_raises_exact_messages(name: str) -> None:
    path = BAD / f"{name}.yaml"
    with pytest.raises(PolicyError) as exc:
        load_policy_file(path)
    assert exc.value.problems == [f"{path}: {message}" for message in EXPECTED[name]]
    assert str(exc.value) == "\n".join(exc.value.problems)


def test_file_path_is_named_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "policy.yaml").write_text((BAD / "bad_version.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PolicyError) as exc:
        load_policy_file("policy.yaml")
    assert exc.value.problems == ["policy.yaml: version: must be 1, got a string '1'"]


def test_missing_file_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as exc:
        load_policy_file(path)
    assert exc.value.problems == [f"{path}: cannot read: No such file or directory"]


def test_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as exc:
        load_policy_file(tmp_path)
    assert exc.value.problems == [f"{tmp_path}: cannot read: Is a directory"]


def test_every_problem_of_a_file_is_reported_in_one_run() -> None:
    bad = doc(version=2, currency="usd")
    bad["firms"][0]["limits"] = {"max_order_qty": -1, "max_gross_notional": 1.5}
    bad["traders"][0]["strategies"] = ["NOPE"]
    assert problems(bad) == [
        "p.yaml: version: must be 1, got int 2",
        "p.yaml: currency: must be a three-letter ISO code such as USD, got a string 'usd'",
        "p.yaml: firms[0].limits.max_order_qty: must be between 0 and 9007199254740991, got -1",
        "p.yaml: firms[0].limits.max_gross_notional: must be an amount given as a string or "
        "integer, not 1.5 (write amounts as quoted decimal strings)",
        "p.yaml: traders[0].strategies[0]: unknown strategy 'NOPE'",
    ]


# -- rules checked on documents ------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "shown"),
    [(True, "bool True"), (1.0, "float 1.0"), (None, "nothing"), (2, "int 2")],
)
def test_version_must_be_the_integer_one(version: object, shown: str) -> None:
    assert problems(doc(version=version)) == [f"p.yaml: version: must be 1, got {shown}"]


def test_version_and_currency_are_required() -> None:
    bad = doc()
    del bad["version"], bad["currency"]
    assert problems(bad) == [
        "p.yaml: version: must be 1, got nothing",
        "p.yaml: currency: must be a three-letter ISO code such as USD, got nothing",
    ]


@pytest.mark.parametrize(
    ("value", "shown"), [(True, "bool True"), (-1, "int -1"), ("2", "a string '2'")]
)
def test_minor_units_must_be_0_to_8(value: object, shown: str) -> None:
    assert problems(doc(minor_units=value)) == [
        f"p.yaml: minor_units: must be a whole number from 0 to 8, got {shown}"
    ]


def test_firms_must_be_a_non_empty_list() -> None:
    missing = doc()
    del missing["firms"], missing["strategies"], missing["traders"]
    assert problems(missing) == ["p.yaml: firms: at least one firm is required"]
    assert problems(doc(firms={"id": "ACME"}, strategies=[], traders=[])) == [
        "p.yaml: firms: must be a list, got a mapping"
    ]


def test_ids_are_at_most_64_characters() -> None:
    ok = doc()
    ok["firms"][0]["desks"][0]["id"] = "D" * 64
    assert parse_policy(ok).node("desk:" + "D" * 64) is not None
    bad = doc()
    bad["firms"][0]["desks"][0]["id"] = "D" * 65
    assert problems(bad) == [f"p.yaml: firms[0].desks[0].id: {_ID_RULE} a string '{'D' * 65}'"]


def test_id_must_be_a_string() -> None:
    bad = doc()
    bad["firms"][0]["id"] = 123
    bad["strategies"] = bad["traders"] = []
    assert problems(bad) == [f"p.yaml: firms[0].id: {_ID_RULE} int 123"]


def test_references_must_be_a_list() -> None:
    bad = doc()
    bad["strategies"][0]["accounts"] = "ACC-1"
    assert problems(bad) == ["p.yaml: strategies[0].accounts: must be a list, got a string 'ACC-1'"]


def test_one_mistake_gives_one_message() -> None:
    # A bad desk id: its account still counts as defined for the entitlements below.
    bad_desk = doc()
    bad_desk["firms"][0]["desks"][0]["id"] = "EQ CASH"
    assert problems(bad_desk) == [f"p.yaml: firms[0].desks[0].id: {_ID_RULE} a string 'EQ CASH'"]
    bad_firm = doc()
    bad_firm["firms"][0]["id"] = "AC ME"
    assert problems(bad_firm) == [f"p.yaml: firms[0].id: {_ID_RULE} a string 'AC ME'"]
    # A strategy left out for an unknown account is not "unknown" to its traders...
    bad_strategy = doc()
    bad_strategy["strategies"][0]["accounts"] = ["ACC-1", "ACC-9"]
    assert problems(bad_strategy) == ["p.yaml: strategies[0].accounts[1]: unknown account 'ACC-9'"]
    # ...but a strategy defined nowhere is.
    nowhere = doc()
    nowhere["traders"][0]["strategies"] = ["MM-1", "MM-9"]
    assert problems(nowhere) == ["p.yaml: traders[0].strategies[1]: unknown strategy 'MM-9'"]


def test_a_strategy_may_not_list_strategies() -> None:
    bad = doc()
    bad["strategies"][0]["strategies"] = ["MM-1"]
    assert problems(bad) == [
        "p.yaml: strategies[0].strategies: unknown key (allowed: id, limits, accounts, state)"
    ]


def test_count_limits_refuse_bool_and_beyond_exact() -> None:
    assert problems(with_limits({"max_order_qty": True, "max_open_orders": MAX_EXACT + 1})) == [
        "p.yaml: firms[0].limits.max_order_qty: must be a whole number, got bool True",
        f"p.yaml: firms[0].limits.max_open_orders: must be between 0 and {MAX_EXACT}, "
        f"got {MAX_EXACT + 1}",
    ]


def test_empty_limit_value_is_refused_not_ignored() -> None:
    # "max_gross_notional:" with nothing after it would otherwise mean "no limit".
    assert problems(with_limits({"max_gross_notional": None, "max_order_qty": None})) == [
        "p.yaml: firms[0].limits.max_order_qty: must be a whole number, got nothing",
        "p.yaml: firms[0].limits.max_gross_notional: must be an amount, got nothing",
    ]


def test_shadow_list_entry_must_name_a_limit_set_here() -> None:
    limits = {"max_order_qty": 10, "shadow": ["max_order_qty", "messages", 7]}
    assert problems(with_limits(limits)) == [
        "p.yaml: firms[0].limits.shadow[1]: limit 'messages' is not set at this node",
        "p.yaml: firms[0].limits.shadow[2]: unknown limit 7",
    ]


def test_limits_must_be_a_mapping() -> None:
    assert problems(with_limits([1, 2])) == [
        "p.yaml: firms[0].limits: must be a mapping, got a list"
    ]  # type: ignore[arg-type]


def test_duplicate_yaml_keys_are_refused_but_merge_overrides_load(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\ncurrency: USD\nbase: &base {max_order_qty: 10, max_open_orders: 5}\n"
    )
    # The anchor above is an unknown key: refused as such, not as a duplicate.
    with pytest.raises(PolicyError) as exc:
        load_policy_file(path)
    assert exc.value.problems[0] == (
        f"{path}: base: unknown key (allowed: version, currency, minor_units, firms, strategies, "
        "traders, trading_day, reference_prices, overrides, symbol_groups, tiers, audit, "
        "retention, time_in_force)"
    )
    path.write_text(
        "version: 1\n"
        "currency: USD\n"
        "firms:\n"
        "  - id: ACME\n"
        "    desks:\n"
        "      - id: D1\n"
        "        limits: &desk {max_order_qty: 10, max_open_orders: 5}\n"
        "      - id: D2\n"
        "        limits: {<<: *desk, max_open_orders: 7}\n"
    )
    policy = load_policy_file(path)
    assert policy.nodes["desk:D1"].limits == Limits(max_order_qty=10, max_open_orders=5)
    assert policy.nodes["desk:D2"].limits == Limits(max_order_qty=10, max_open_orders=7)


def test_duplicate_key_nested_deep_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\ncurrency: USD\nfirms:\n  - id: ACME\n"
        "    limits:\n      max_order_qty: 10\n      max_order_qty: 1000000\n"
    )
    with pytest.raises(PolicyError) as exc:
        load_policy_file(path)
    assert exc.value.problems == [
        f"{path}: not valid YAML (line 7, column 7): found duplicate key 'max_order_qty'"
    ]


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: !!python/object/apply:os.getpid []\n")
    with pytest.raises(PolicyError) as exc:
        load_policy_file(path)
    assert exc.value.problems == [
        f"{path}: not valid YAML (line 1, column 10): could not determine a constructor for the "
        "tag 'tag:yaml.org,2002:python/object/apply:os.getpid'"
    ]


# -- good policies ---------------------------------------------------------------


def test_example_policy_loads_in_minor_units() -> None:
    p = load_policy_file(EXAMPLE)
    assert (p.currency, p.minor_units, p.firms) == ("USD", 2, ["ACME"])
    lim = {scope: node.limits for scope, node in p.nodes.items()}
    assert lim["firm:ACME"] == Limits(
        max_gross_notional=5_000_000_000, max_net_notional=2_000_000_000
    )
    assert lim["desk:EQ-CASH"] == Limits(max_gross_notional=1_000_000_000, max_open_orders=500)
    assert lim["account:ACC-1"] == Limits(max_order_notional=100_000_000, max_order_qty=100_000)
    assert lim["account:ACC-2"] == Limits(max_order_notional=25_000_000, max_order_qty=20_000)
    assert lim["desk:EQ-DERIV"] == Limits(
        max_gross_notional=500_000_000, max_net_notional=200_000_000, max_open_orders=200
    )
    assert lim["account:ACC-3"] == Limits(max_order_notional=50_000_000, max_order_qty=5_000)
    assert lim["strategy:MM-1"] == Limits(messages={"all": MessageLimits(50, 300)})
    assert lim["strategy:STAT-ARB"] == Limits(
        max_gross_notional=300_000_000,
        messages={"all": MessageLimits(per_second=20), "cancel": MessageLimits(per_second=10)},
    )
    assert lim["trader:T-ALICE"] == Limits(max_gross_notional=200_000_000)
    assert lim["trader:T-BOB"] == Limits(
        max_gross_notional=150_000_000,
        max_net_notional=75_000_000,
        shadow=frozenset({"max_net_notional"}),
    )
    bob = p.nodes["trader:T-BOB"]
    assert (bob.firm, bob.accounts, bob.strategies) == (
        "ACME",
        frozenset({"ACC-2", "ACC-3"}),
        frozenset({"MM-1", "STAT-ARB"}),
    )
    assert p.nodes["strategy:STAT-ARB"].accounts == frozenset({"ACC-3"})
    assert {s: n.parent for s, n in p.nodes.items()} == {
        "firm:ACME": None,
        "desk:EQ-CASH": "firm:ACME",
        "desk:EQ-DERIV": "firm:ACME",
        "account:ACC-1": "desk:EQ-CASH",
        "account:ACC-2": "desk:EQ-CASH",
        "account:ACC-3": "desk:EQ-DERIV",
        "strategy:MM-1": None,
        "strategy:STAT-ARB": None,
        "trader:T-ALICE": None,
        "trader:T-BOB": None,
    }
    assert {n.firm for n in p.nodes.values()} == {"ACME"}


def test_spec_sample_policy_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(SPEC_SAMPLE)
    p = load_policy_file(str(path))
    assert sorted(p.nodes) == [
        "account:ACC-1",
        "desk:EQ-CASH",
        "firm:ACME",
        "strategy:MM-1",
        "trader:T-ALICE",
    ]
    assert p.nodes["firm:ACME"].limits.max_gross_notional == 50_000_000 * 100
    assert p.nodes["firm:ACME"].limits.max_net_notional == 20_000_000 * 100
    assert p.nodes["desk:EQ-CASH"].limits.max_gross_notional == 10_000_000 * 100
    assert p.nodes["desk:EQ-CASH"].limits.max_open_orders == 500
    assert p.nodes["account:ACC-1"].limits.max_order_notional == 1_000_000 * 100
    assert p.nodes["account:ACC-1"].limits.max_order_qty == 100_000
    assert p.nodes["strategy:MM-1"].limits.messages == {"all": MessageLimits(50, 300)}
    assert p.nodes["trader:T-ALICE"].limits.max_gross_notional == 2_000_000 * 100
    assert p.path("ACC-1") == ("EQ-CASH", "ACME")


@pytest.mark.parametrize(
    ("minor_units", "amount", "minor"),
    [
        (0, "1000", 1000),
        (0, "1000.000", 1000),
        (2, "0.01", 1),
        (2, "12.3", 1230),
        (3, "1.005", 1005),
        (8, "0.00000001", 1),
        (8, "90071992.54740991", MAX_EXACT),
    ],
)
def test_money_limits_scale_by_minor_units(minor_units: int, amount: str, minor: int) -> None:
    p = parse_policy(with_limits({"max_gross_notional": amount}, minor_units=minor_units))
    assert p.minor_units == minor_units
    assert p.nodes["firm:ACME"].limits.max_gross_notional == minor


def test_money_limit_may_be_a_plain_integer() -> None:
    p = parse_policy(with_limits({"max_order_notional": 250, "max_net_notional": "0"}))
    assert p.nodes["firm:ACME"].limits.max_order_notional == 25_000
    assert p.nodes["firm:ACME"].limits.max_net_notional == 0


def test_minor_units_defaults_to_two() -> None:
    bad = with_limits({"max_gross_notional": "1.25"})
    del bad["minor_units"]
    p = parse_policy(bad)
    assert (p.minor_units, p.nodes["firm:ACME"].limits.max_gross_notional) == (2, 125)


def test_money_with_more_decimals_than_minor_units_is_refused_at_zero() -> None:
    assert problems(with_limits({"max_gross_notional": "1.5"}, minor_units=0)) == [
        "p.yaml: firms[0].limits.max_gross_notional: has more than 0 decimal places"
    ]


def test_omitted_limits_are_none() -> None:
    p = load_policy_file(EXAMPLE)
    acc = p.nodes["account:ACC-1"].limits
    assert acc.max_gross_notional is None
    assert acc.max_net_notional is None
    assert acc.max_open_orders is None
    assert acc.messages == {}
    assert acc.shadow == frozenset()
    assert list(acc.items()) == [("max_order_qty", 100_000), ("max_order_notional", 100_000_000)]
    mm = p.nodes["strategy:MM-1"].limits
    assert [
        getattr(mm, n)
        for n in (
            "max_order_qty",
            "max_order_notional",
            "max_gross_notional",
            "max_net_notional",
            "max_open_orders",
        )
    ] == [None] * 5
    assert list(mm.items()) == []
    # A node without a limits block at all, and one with an empty block.
    bare = parse_policy(BASE)
    assert all(n.limits == Limits() for n in bare.nodes.values())
    empty = parse_policy(with_limits({}))
    assert empty.nodes["firm:ACME"].limits == Limits()


def test_shadow_true_covers_every_limit_set_at_that_node() -> None:
    limits = {
        "max_gross_notional": "100",
        "max_open_orders": 5,
        "messages": {"per_second": 3},
        "shadow": True,
    }
    p = parse_policy(with_limits(limits))
    firm = p.nodes["firm:ACME"].limits
    assert firm.shadow == frozenset({"max_gross_notional", "max_open_orders", "messages"})
    assert firm.max_gross_notional == 10_000 and firm.max_open_orders == 5
    # Only that node: limits elsewhere stay enforced.
    assert all(not n.limits.shadow for s, n in p.nodes.items() if s != "firm:ACME")


def test_shadow_true_with_every_limit() -> None:
    limits = {
        "max_order_qty": 1,
        "max_order_notional": "1",
        "max_gross_notional": "1",
        "max_net_notional": "1",
        "max_open_orders": 1,
        "max_daily_loss": "1",
        "max_basket_notional": "1",
        "duplicate_window_ms": 1,
        "messages": {"per_10s": 1},
        "cancel_to_new": {"max_ratio": "2", "window_s": 60},
        "shadow": True,
    }
    p = parse_policy(with_limits(limits))
    placed = {"max_symbol_notional", "fill_throttle"}  # a firm cannot carry these
    assert p.nodes["firm:ACME"].limits.shadow == frozenset(LIMIT_NAMES) - placed


@pytest.mark.parametrize("value", [False, None, []])
def test_shadow_false_or_empty_enforces_everything(value: object) -> None:
    p = parse_policy(with_limits({"max_order_qty": 10, "shadow": value}))
    assert p.nodes["firm:ACME"].limits.shadow == frozenset()


def test_shadow_list_names_a_subset() -> None:
    limits = {"max_order_qty": 10, "max_gross_notional": "5", "shadow": ["max_gross_notional"]}
    p = parse_policy(with_limits(limits))
    assert p.nodes["firm:ACME"].limits.shadow == frozenset({"max_gross_notional"})


def test_message_limits_per_type() -> None:
    limits = {
        "messages": {
            "per_10s": 100,
            "new": {"per_second": 5},
            "replace": {"per_second": 2, "per_10s": 9},
            "cancel": {"per_10s": 50},
        }
    }
    p = parse_policy(with_limits(limits))
    assert p.nodes["firm:ACME"].limits.messages == {
        "all": MessageLimits(per_10s=100),
        "new": MessageLimits(per_second=5),
        "replace": MessageLimits(2, 9),
        "cancel": MessageLimits(per_10s=50),
    }
    # Per-type caps alone, with no cap on all messages.
    only_cancel = parse_policy(with_limits({"messages": {"cancel": {"per_second": 1}}}))
    assert only_cancel.nodes["firm:ACME"].limits.messages == {"cancel": MessageLimits(per_second=1)}


def test_same_id_may_be_used_by_different_kinds() -> None:
    same = doc()
    same["firms"][0]["desks"][0]["accounts"].append({"id": "EQ-CASH"})
    same["strategies"].append({"id": "T-ALICE", "accounts": ["ACC-1"]})
    p = parse_policy(same)
    assert {"desk:EQ-CASH", "account:EQ-CASH", "strategy:T-ALICE", "trader:T-ALICE"} <= set(p.nodes)


# -- Policy methods ----------------------------------------------------------------


def test_subtree_of_a_desk_holds_its_accounts_and_the_entitled_nodes() -> None:
    p = load_policy_file(EXAMPLE)
    cash = [n.scope for n in p.subtree("desk:EQ-CASH")]
    assert cash[0] == "desk:EQ-CASH"
    assert len(cash) == len(set(cash))
    assert set(cash) == {
        "desk:EQ-CASH",
        "account:ACC-1",
        "account:ACC-2",
        "strategy:MM-1",
        "trader:T-ALICE",
        "trader:T-BOB",
    }
    deriv = {n.scope for n in p.subtree("desk:EQ-DERIV")}
    assert deriv == {"desk:EQ-DERIV", "account:ACC-3", "strategy:STAT-ARB", "trader:T-BOB"}
    acc3 = {n.scope for n in p.subtree("account:ACC-3")}
    assert acc3 == {"account:ACC-3", "strategy:STAT-ARB", "trader:T-BOB"}


def test_subtree_of_firm_and_global_is_everything() -> None:
    p = load_policy_file(EXAMPLE)
    firm = [n.scope for n in p.subtree("firm:ACME")]
    assert firm[0] == "firm:ACME"
    assert sorted(firm) == sorted(p.nodes)
    assert sorted(n.scope for n in p.subtree("global")) == sorted(p.nodes)


def test_subtree_keeps_firms_apart() -> None:
    two = doc()
    two["firms"].append({"id": "GLOBEX", "desks": [{"id": "FX", "accounts": [{"id": "ACC-9"}]}]})
    two["strategies"].append({"id": "FX-ARB", "accounts": ["ACC-9"]})
    p = parse_policy(two)
    assert {n.scope for n in p.subtree("firm:GLOBEX")} == {
        "firm:GLOBEX",
        "desk:FX",
        "account:ACC-9",
        "strategy:FX-ARB",
    }
    assert "strategy:FX-ARB" not in {n.scope for n in p.subtree("firm:ACME")}
    assert p.firms == ["ACME", "GLOBEX"]
    assert p.path("ACC-9") == ("FX", "GLOBEX")


def test_subtree_of_a_strategy_or_trader_is_itself() -> None:
    p = load_policy_file(EXAMPLE)
    assert [n.scope for n in p.subtree("strategy:MM-1")] == ["strategy:MM-1"]
    assert [n.scope for n in p.subtree("trader:T-BOB")] == ["trader:T-BOB"]


def test_subtree_of_unknown_scope_raises() -> None:
    p = load_policy_file(EXAMPLE)
    with pytest.raises(KeyError):
        p.subtree("desk:NOPE")


def test_path_gives_desk_and_firm_of_an_account() -> None:
    p = load_policy_file(EXAMPLE)
    assert p.path("ACC-1") == ("EQ-CASH", "ACME")
    assert p.path("ACC-3") == ("EQ-DERIV", "ACME")
    assert p.path("ACC-404") is None
    assert p.path("EQ-CASH") is None  # a desk id is not an account
    assert p.node("account:ACC-404") is None
    assert [n.scope for n in p.children("desk:EQ-CASH")] == ["account:ACC-1", "account:ACC-2"]


def test_pack_round_trips_and_sha_names_the_content() -> None:
    p = load_policy_file(EXAMPLE)
    back = Policy.unpack(p.pack())
    assert back.nodes == p.nodes
    assert back.sha256 == p.sha256
    reordered = dict(reversed(list(p.document.items())))
    assert parse_policy(reordered).sha256 == p.sha256
    changed = copy.deepcopy(dict(p.document))
    changed["firms"][0]["limits"]["max_gross_notional"] = "50000001"
    assert parse_policy(changed).sha256 != p.sha256


def test_long_values_are_cut_short_in_messages() -> None:
    bad = doc()
    bad["firms"][0]["desks"][0]["id"] = "D" * 10_000
    bad["strategies"][0]["accounts"] = ["ACC-1", "X" * 10_000]
    shown = "'" + "D" * 76 + "..."
    assert problems(bad) == [
        f"p.yaml: firms[0].desks[0].id: {_ID_RULE} a string {shown}",
        "p.yaml: strategies[0].accounts[1]: unknown account '" + "X" * 76 + "...",
    ]


# -- Decimal amounts --------------------------------------------------------------


def test_a_decimal_amount_is_accepted_exactly_as_its_text() -> None:
    from decimal import Decimal

    as_decimal = parse_policy(with_limits({"max_gross_notional": Decimal("1000000.05")}))
    as_text = parse_policy(with_limits({"max_gross_notional": "1000000.05"}))
    limits = as_decimal.nodes["firm:ACME"].limits
    assert dict(limits.items())["max_gross_notional"] == 100000005
    assert as_decimal.sha256 == as_text.sha256
    assert Policy.unpack(as_decimal.pack()).sha256 == as_decimal.sha256


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "must be finite, not NaN"),
        ("0.001", "has more than 2 decimal places"),
        ("-5", "must not be negative, got '-5'"),
    ],
)
def test_a_bad_decimal_amount_is_named(value: str, message: str) -> None:
    from decimal import Decimal

    assert problems(with_limits({"max_gross_notional": Decimal(value)})) == [
        f"p.yaml: firms[0].limits.max_gross_notional: {message}"
    ]


@pytest.mark.parametrize(
    ("value", "kind"), [(frozenset({"1"}), "frozenset"), (b"100", "bytes"), ((1, 2), "tuple")]
)
def test_an_amount_of_another_type_is_named(value: object, kind: str) -> None:
    assert problems(with_limits({"max_gross_notional": value})) == [
        f"p.yaml: firms[0].limits.max_gross_notional: must be an amount, not {kind}"
    ]


def test_audit_require_archive_parses() -> None:
    doc: dict[str, Any] = {"version": 1, "currency": "USD", "firms": [{"id": "ACME"}]}
    assert parse_policy(doc).controls.require_archive is False
    doc["audit"] = {"require_archive": True}
    assert parse_policy(doc).controls.require_archive is True
    doc["audit"] = {"require_archives": True}
    with pytest.raises(PolicyError) as exc:
        parse_policy(doc, source="p.yaml")
    assert exc.value.problems == [
        "p.yaml: audit.require_archives: unknown key (allowed: require_archive)"
    ]
