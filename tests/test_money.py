"""Exact money: parsing, notional rounding, and the Lua twin of notional_minor."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.policy.money import (
    MAX_EXACT,
    Price,
    format_minor,
    notional_minor,
    parse_money,
    parse_price,
    parse_qty,
)
from ledger.store.scripts import lua_dir


def refused(fn: Any, *args: Any) -> str:
    """The message of the InvalidInput that ``fn(*args)`` raises."""
    with pytest.raises(InvalidInput) as exc:
        fn(*args)
    return str(exc.value)


def exact_ceil(qty: int, price: str, minor_units: int) -> int:
    """ceil(qty * price * 10**minor_units) computed in Decimal with ample precision."""
    with localcontext() as ctx:
        ctx.prec = 200
        return math.ceil(Decimal(qty) * Decimal(price) * Decimal(10) ** minor_units)


# -- floats and non-finite values ------------------------------------------------------


@pytest.mark.parametrize("value", [1.0, 0.1, 187.25, float("nan"), float("inf")])
def test_floats_are_refused_everywhere(value: float) -> None:
    assert refused(parse_qty, value) == (
        f"qty: must be a whole number given as a string or integer, not {value!r}"
    )
    assert refused(parse_price, value) == (
        f"price: must be a decimal number given as a string or integer, not {value!r}"
    )
    assert refused(parse_money, value, 2, "limit") == (
        f"limit: must be an amount given as a string or integer, not {value!r}"
    )


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_decimals_are_refused(value: str) -> None:
    d = Decimal(value)
    assert refused(parse_qty, d) == f"qty: must be finite, not {d}"
    assert refused(parse_price, d) == f"price: must be finite, not {d}"
    assert refused(parse_money, d, 2, "limit") == f"limit: must be finite, not {d}"


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "Infinity"])
def test_non_finite_strings_are_refused(text: str) -> None:
    assert refused(parse_qty, text) == f"qty: must be a whole number such as 100, got '{text}'"
    assert (
        refused(parse_price, text)
        == f"price: must be a decimal number such as 187.25, got '{text}'"
    )


def test_bool_and_other_types_are_refused() -> None:
    assert (
        refused(parse_qty, True)
        == "qty: must be a whole number given as a string or integer, not True"
    )
    assert refused(parse_price, False) == (
        "price: must be a decimal number given as a string or integer, not False"
    )
    assert refused(parse_qty, None) == "qty: must be a whole number, got nothing"
    assert refused(parse_price, [1]) == "price: must be a decimal number, not list"
    assert refused(parse_money, b"100", 2, "limit") == "limit: must be an amount, not bytes"


# -- sign, zero, form ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", -1, Decimal("-1"), "-0", " -5 "])
def test_negative_is_refused(value: object) -> None:
    shown = str(value).strip()
    assert refused(parse_qty, value) == f"qty: must not be negative, got '{shown}'"
    assert refused(parse_price, value) == f"price: must not be negative, got '{shown}'"
    assert refused(parse_money, value, 2, "m") == f"m: must not be negative, got '{shown}'"


def test_negative_zero_decimal_is_zero() -> None:
    assert refused(parse_qty, Decimal("-0")) == "qty: must be greater than zero"
    assert refused(parse_price, Decimal("-0.0")) == "price: must not be negative, got '-0.0'"


@pytest.mark.parametrize("value", ["0", 0, "000", Decimal("0"), Decimal("0E+3")])
def test_zero_qty_is_refused(value: object) -> None:
    assert refused(parse_qty, value) == "qty: must be greater than zero"


@pytest.mark.parametrize("value", ["0", "0.000", 0, Decimal("0E-5"), "00.00"])
def test_zero_price_is_refused(value: object) -> None:
    assert refused(parse_price, value) == "price: must be greater than zero"


@pytest.mark.parametrize("value", ["0", "0.00", 0, Decimal("0")])
def test_zero_money_is_a_valid_limit(value: object) -> None:
    assert parse_money(value, 2, "m") == 0


@pytest.mark.parametrize(
    "text",
    ["1e3", "1E3", "1.5e2", "1e-2", "0x10", "1_000", "+5", ".5", "5.", "1,5", "١٢٣", "１００", ""],
)
def test_exponent_and_other_forms_in_text_are_refused(text: str) -> None:
    assert refused(parse_qty, text) == f"qty: must be a whole number such as 100, got {text!r}"
    assert (
        refused(parse_price, text)
        == f"price: must be a decimal number such as 187.25, got {text!r}"
    )
    assert (
        refused(parse_money, text, 2, "m") == f"m: must be an amount such as 187.25, got {text!r}"
    )


def test_exponent_in_a_decimal_is_its_value() -> None:
    assert parse_qty(Decimal("1E+3")) == 1000
    assert parse_qty(Decimal("100.000")) == 100
    assert parse_price(Decimal("1.5E+2")) == Price(150, 0)
    assert parse_price(Decimal("25E-3")) == Price(25, 3)
    assert parse_money(Decimal("1E+2"), 2, "m") == 10_000
    assert (
        refused(parse_qty, Decimal("1.5")) == "qty: must be a whole number such as 100, got '1.5'"
    )


@pytest.mark.parametrize("text", [" 100", "100 ", "\t100\n", "  100  "])
def test_surrounding_whitespace_is_ignored(text: str) -> None:
    assert parse_qty(text) == 100
    assert parse_price(text) == Price(100, 0)
    assert parse_money(text, 2, "m") == 10_000


@pytest.mark.parametrize("text", ["1 00", "1\t00", " ", "\n"])
def test_inner_or_only_whitespace_is_refused(text: str) -> None:
    shown = repr(text.strip())
    assert refused(parse_qty, text) == f"qty: must be a whole number such as 100, got {shown}"


def test_decimal_point_in_a_qty_is_refused() -> None:
    assert refused(parse_qty, "100.0") == "qty: must be a whole number such as 100, got '100.0'"


# -- size bounds ---------------------------------------------------------------------------


def test_qty_up_to_the_exact_bound() -> None:
    assert parse_qty(MAX_EXACT) == MAX_EXACT
    assert parse_qty(str(MAX_EXACT)) == MAX_EXACT
    for value in (MAX_EXACT + 1, str(MAX_EXACT + 1), Decimal(MAX_EXACT + 1), 10**29):
        assert refused(parse_qty, value) == f"qty: must be at most {MAX_EXACT}"


def test_price_numerator_up_to_the_exact_bound() -> None:
    assert parse_price(str(MAX_EXACT)) == Price(MAX_EXACT, 0)
    assert parse_price("90071992547409.91") == Price(MAX_EXACT, 2)
    for text in (
        str(MAX_EXACT + 1),
        "90071992547409.92",
        "0.9007199254740992",
        "1.0000000000000000000000000001",
    ):
        assert refused(parse_price, text) == "price: has too many significant digits to stay exact"
    # Trailing zeros are not significant.
    assert parse_price("90071992547409.910000") == Price(MAX_EXACT, 2)


def test_money_up_to_the_exact_bound() -> None:
    assert parse_money("90071992547409.91", 2, "m") == MAX_EXACT
    assert refused(parse_money, "90071992547409.92", 2, "m") == (
        f"m: exceeds the largest exact amount ({MAX_EXACT} minor units)"
    )
    assert refused(parse_money, MAX_EXACT, 2, "m") == (
        f"m: exceeds the largest exact amount ({MAX_EXACT} minor units)"
    )


@pytest.mark.parametrize(
    "value",
    [
        10**30,
        -(10**31),
        10**5000,
        Decimal("1E+30"),
        Decimal("1E+999999999"),
        Decimal("1E-31"),
        Decimal("1E-999999999"),
    ],
    ids=[
        "int10e30",
        "int-10e31",
        "int10e5000",
        "dec1e30",
        "dec1e999999999",
        "dec1e-31",
        "dec1e-999999999",
    ],
)
def test_huge_numbers_are_refused_before_expansion(value: object) -> None:
    # A 5000-digit int or a Decimal like 1E+999999999 must be refused before it
    # is expanded, and as InvalidInput (the INVALID_ORDER path), not a bare ValueError.
    for fn, field in ((parse_qty, "qty"), (parse_price, "price")):
        assert refused(fn, value) == f"{field}: has more than 30 digits"
    assert refused(parse_money, value, 2, "m") == "m: has more than 30 digits"


@pytest.mark.parametrize(
    "text", ["1" * 31, "0." + "0" * 29 + "1", "x" * 1_000_000, " " + "9" * 31 + " "]
)
def test_long_text_is_refused_with_a_short_message(text: str) -> None:
    for fn, field in ((parse_qty, "qty"), (parse_price, "price")):
        assert refused(fn, text) == f"{field}: is longer than 30 characters"
    assert refused(parse_money, text, 2, "m") == "m: is longer than 30 characters"


def test_thirty_characters_are_enough() -> None:
    assert parse_price("0." + "0" * 27 + "1") == Price(1, 28)
    assert parse_qty("0" * 29 + "1") == 1


def test_negative_long_input_message_is_cut_short() -> None:
    message = refused(parse_price, "-" + "9" * 1_000_000)
    assert (
        message == "price: must not be negative, got '-999999999999999999999999999999999999999'..."
    )


# -- notional --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "price", "mu", "expected"),
    [
        (100, "187.25", 2, 1_872_500),
        (1, "0.001", 2, 1),  # a tenth of a cent rounds up to a cent
        (3, "0.333", 2, 100),  # 99.9 cents -> 100
        (1, "187.255", 2, 18_726),
        (7, "0.1", 0, 1),
        (10, "0.1", 0, 1),
        (11, "0.1", 0, 2),
        (1, "0.00000001", 8, 1),
        (1, "0.000000001", 8, 1),
        (10, "0.000000001", 8, 1),
        (1, "5", 8, 500_000_000),
        (MAX_EXACT, "1", 0, MAX_EXACT),
        (1, str(MAX_EXACT), 0, MAX_EXACT),
        (MAX_EXACT, "0.01", 2, MAX_EXACT),
        (MAX_EXACT, "0.001", 2, MAX_EXACT // 10 + 1),
        (1, "90071992547409.91", 2, MAX_EXACT),
    ],
)
def test_notional_is_rounded_up_to_minor_units(
    qty: int, price: str, mu: int, expected: int
) -> None:
    assert notional_minor(qty, parse_price(price), mu) == expected
    assert expected == exact_ceil(qty, price, mu)


def test_qty_times_price_numerator_beyond_exact_is_refused() -> None:
    # 2**27 * 2**26 = 2**53: one more than MAX_EXACT, though the notional in
    # minor units (scale 8, minor units 0) would be small.
    price = Price(2**26, 8)
    assert refused(notional_minor, 2**27, price, 0) == "qty: qty * price is too large to stay exact"
    assert notional_minor(2**27 - 1, price, 0) == exact_ceil(2**27 - 1, str(price), 0)
    assert refused(notional_minor, MAX_EXACT, Price(2, 0), 0, "fill qty") == (
        "fill qty: qty * price is too large to stay exact"
    )


def test_notional_beyond_exact_is_refused() -> None:
    # The numerator product fits, but scaling up to 8 minor units does not.
    assert refused(notional_minor, 10**4, Price(10**4, 0), 8) == (
        "qty: notional is too large to stay exact"
    )
    assert notional_minor(90_071_992, Price(1, 0), 8) == 9_007_199_200_000_000


def test_equal_prices_compare_equal() -> None:
    a, b, c = parse_price("187.25"), parse_price("187.250"), parse_price(Decimal("187.2500"))
    assert a == b == c == Price(18725, 2)
    assert hash(a) == hash(b)
    assert parse_price("100.00") == parse_price("100") == parse_price(100) == Price(100, 0)
    assert parse_price("0187.25") == a
    assert str(b) == "187.25"
    assert notional_minor(3, b, 2) == notional_minor(3, a, 2)
    assert parse_price("187.25") != parse_price("187.26")


def test_price_text() -> None:
    assert str(Price(5, 3)) == "0.005"
    assert repr(Price(5, 3)) == "Price('0.005')"
    assert str(Price(18725, 2)) == "187.25"
    assert str(Price(7, 0)) == "7"
    assert (Price(18725, 2).numerator, Price(18725, 2).scale) == (18725, 2)


@pytest.mark.parametrize(
    ("minor", "mu", "text"),
    [
        (12345, 2, "123.45"),
        (5, 2, "0.05"),
        (0, 2, "0.00"),
        (-5, 2, "-0.05"),
        (-12345, 2, "-123.45"),
        (7, 0, "7"),
        (-7, 0, "-7"),
        (1, 8, "0.00000001"),
        (MAX_EXACT, 2, "90071992547409.91"),
    ],
)
def test_format_minor(minor: int, mu: int, text: str) -> None:
    assert format_minor(minor, mu) == text


@given(st.integers(0, MAX_EXACT), st.integers(0, 8))
def test_format_minor_round_trips_through_parse_money(minor: int, mu: int) -> None:
    assert parse_money(format_minor(minor, mu), mu, "m") == minor


# -- properties ----------------------------------------------------------------------------

decimal_text = st.builds(
    lambda whole, frac, zeros: whole + ("." + frac + "0" * zeros if frac or zeros else ""),
    st.from_regex(r"[0-9]{1,16}", fullmatch=True),
    st.from_regex(r"[0-9]{0,12}", fullmatch=True),
    st.integers(0, 3),
)


def numerator_of(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole + frac.rstrip("0"))


@given(decimal_text)
def test_parse_price_keeps_the_exact_value(text: str) -> None:
    try:
        price = parse_price(text)
    except InvalidInput:
        # Refused exactly when too long, zero, or beyond the exact bound.
        assert len(text) > 30 or not 0 < numerator_of(text) <= MAX_EXACT
        return
    assert Decimal(price.numerator).scaleb(-price.scale) == Decimal(text)
    assert price.numerator == numerator_of(text)
    assert price.scale == 0 or price.numerator % 10 != 0


@given(st.integers(1, MAX_EXACT), decimal_text, st.integers(0, 8))
@example(2**27, "0.67108864", 0)
@example(MAX_EXACT, "1", 0)
@example(MAX_EXACT, "0.0000000001", 8)
@example(3, "3002399751580330.3", 0)
def test_notional_is_the_exact_ceiling(qty: int, text: str, mu: int) -> None:
    try:
        price = parse_price(text)
        notional = notional_minor(qty, price, mu)
    except InvalidInput:
        # Refused only when something truly beyond the exact bound was asked.
        n = numerator_of(text)
        assert (
            len(text) > 30
            or not 0 < n <= MAX_EXACT
            or qty * n > MAX_EXACT
            or exact_ceil(qty, text, mu) > MAX_EXACT
        )
        return
    assert notional == exact_ceil(qty, text, mu)
    assert 0 < notional <= MAX_EXACT


# -- the Lua twin on a real server -----------------------------------------------------------


@st.composite
def near_bound(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(qty, numerator, scale, minor units) with qty * numerator (and the notional) exact,
    mostly right at the 2**53 - 1 bound."""
    mu = draw(st.integers(0, 8))
    ps = draw(st.integers(0, 28))
    up = 10 ** max(0, mu - ps)
    top = MAX_EXACT // up
    pn = draw(
        st.one_of(st.integers(1, 1000), st.integers(max(1, top - 1000), top), st.integers(1, top))
    )
    limit = MAX_EXACT // (pn * up)
    qty = draw(
        st.one_of(st.just(limit), st.integers(max(1, limit - 1000), limit), st.integers(1, limit))
    )
    return qty, pn, ps, mu


@pytest.fixture
def lua_notional(redis_client: redis.Redis) -> Any:
    # money.lua guards the exact range with common.lua's EXACT_MAX and inexact.
    text = "\n".join(
        (lua_dir() / "includes" / name).read_text(encoding="utf-8")
        for name in ("common.lua", "money.lua")
    )
    script = redis_client.register_script(
        text + "\nlocal n = notional(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),"
        " tonumber(ARGV[4]))\nreturn {n, math.floor(n) == n and 1 or 0}\n"
    )

    def run(qty: int, pn: int, ps: int, mu: int) -> tuple[int, int]:
        value, integral = script(keys=[], args=[qty, pn, ps, mu])
        return int(value), int(integral)

    return run


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(near_bound())
@example((MAX_EXACT, 1, 0, 0))
@example((1, MAX_EXACT, 0, 0))
@example((MAX_EXACT, 1, 28, 8))
@example((1, MAX_EXACT, 8, 0))
@example((MAX_EXACT, 1, 9, 0))
@example((3, 3_002_399_751_580_330, 1, 0))
@example((1, 90_071_992_547, 0, 5))
@example((2**27 - 1, 2**26, 8, 0))
@example((1, MAX_EXACT, 22, 6))
@example((7, 1_286_742_750_677_284, 15, 2))
def test_lua_notional_equals_python_near_the_bound(
    lua_notional: Any, case: tuple[int, int, int, int]
) -> None:
    qty, pn, ps, mu = case
    expected = notional_minor(qty, Price(pn, ps), mu)
    assert lua_notional(qty, pn, ps, mu) == (expected, 1)


def test_lua_notional_small_cases(lua_notional: Any) -> None:
    for qty, price, mu in [
        (100, "187.25", 2),
        (1, "0.001", 2),
        (3, "0.333", 2),
        (11, "0.1", 0),
        (1, "0.00000001", 8),
        (5, "42", 8),
    ]:
        p = parse_price(price)
        assert lua_notional(qty, p.numerator, p.scale, mu) == (notional_minor(qty, p, mu), 1)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    qty=st.integers(1, 10**6),
    pn=st.integers(1, 10**7),
    ps=st.integers(0, 8),
    mn=st.integers(1, 10**4),
    ms=st.integers(0, 8),
    mu=st.integers(0, 8),
)
@example(qty=1, pn=1, ps=2, mn=5, ms=1, mu=2)  # 0.005 -> 0.01
@example(qty=2, pn=1, ps=2, mn=5, ms=1, mu=2)  # 0.01 exactly
def test_lua_notional_with_a_multiplier_is_the_exact_ceiling(
    redis_client: redis.Redis, qty: int, pn: int, ps: int, mn: int, ms: int, mu: int
) -> None:
    text = "\n".join(
        (lua_dir() / "includes" / name).read_text(encoding="utf-8")
        for name in ("common.lua", "money.lua")
    )
    script = redis_client.register_script(
        text + "\nlocal a = {}\nfor i = 1, 6 do a[i] = tonumber(ARGV[i]) end\n"
        "local n = notional(a[1], a[2], a[3], a[4], {a[5], a[6]})\n"
        "return {n, inexact and 1 or 0}\n"
    )
    exact = Fraction(qty * pn * mn * 10**mu, 10 ** (ps + ms))
    expected = -(-exact.numerator // exact.denominator)
    value, flagged = script(keys=[], args=[qty, pn, ps, mu, mn, ms])
    if qty * pn * mn > MAX_EXACT or expected > MAX_EXACT:
        assert flagged == 1
    else:
        assert (int(value), flagged) == (expected, 0)
