"""Expressions: exact numbers for every ABI integer, one value shape, CEL's operators, macros and
helpers, unknown names caught at build time."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakglass.detect.expr import Expression, to_cel
from breakglass.detect.operators import EvalError
from breakglass.detect.syntax import compile_expression
from breakglass.errors import DetectionError

UINT256_MAX = 2**256 - 1
INT256_MIN, INT256_MAX = -(2**255), 2**255 - 1


def holds(source: str, **values: object) -> bool:
    return Expression(source, "m").holds(to_cel(values))


def test_values_enter_in_one_shape_with_integers_exact() -> None:
    shaped = to_cel({"amount": 10**24 + 1, "who": "0xAbC", "raw": b"\x01\x02", "ok": True, "xs": (1, "a")})
    assert shaped == {"amount": 10**24 + 1, "who": "0xabc", "raw": "0x0102", "ok": True, "xs": [1, "a"]}
    assert type(shaped["amount"]) is int


def test_uint256_and_int256_are_exact_at_2_to_the_255() -> None:
    big = 2**255
    assert holds("a == b + 1", a=big + 1, b=big)  # a double cannot tell these apart
    assert not holds("a == b", a=big + 1, b=big)
    assert holds("a - b == 1 && a > b", a=big, b=big - 1)
    assert holds("a * 2 == max", a=big, max=2**256)
    assert holds("a == 57896044618658097711785492504343953926634992332820282019728792003956564819968", a=big)
    assert holds(
        "x == -57896044618658097711785492504343953926634992332820282019728792003956564819968", x=INT256_MIN
    )
    assert holds("x + y == -1 && x < y", x=INT256_MIN, y=INT256_MAX)
    assert holds(
        "u == 115792089237316195423570985008687907853269984665640564039457584007913129639935", u=UINT256_MAX
    )
    assert holds("u - 1 != u && u % 2 == 1", u=UINT256_MAX)


@settings(deadline=None)  # a loaded machine is no failure
@given(st.integers(0, UINT256_MAX), st.integers(0, UINT256_MAX))
def test_any_two_uint256_compare_and_add_exactly(a: int, b: int) -> None:
    assert holds(
        "(a < b) == lt && (a == b) == eq && a + b == total", a=a, b=b, lt=a < b, eq=a == b, total=a + b
    )


@settings(deadline=None)
@given(st.integers(INT256_MIN, INT256_MAX), st.integers(INT256_MIN, INT256_MAX).filter(bool))
def test_any_two_int256_divide_to_the_exact_quotient(a: int, b: int) -> None:
    program = compile_expression("a / b")
    assert program.run({"a": a, "b": b}) == Fraction(a, b)
    assert holds("a / b * b == a", a=a, b=b)


def test_cash_equals_held_is_decided_on_the_exact_balance() -> None:
    held = 10_000_000 * 10**18
    assert not holds("cash == held", cash=held - 1, held=held)  # 1 wei short: doubles said equal
    assert holds("cash == held", cash=held, held=held)


def test_ratios_are_exact_quotients_and_compare_with_decimal_literals() -> None:
    assert holds("7 / 2 == 3.5")
    assert holds("assets / liabilities >= 0.99 && assets > 0", assets=10**24, liabilities=10**24 + 10**20)
    assert not holds("assets / liabilities >= 0.99", assets=98 * 10**22, liabilities=10**24)
    # 0.1 is one tenth, not 0.1000000000000000055...: exactly at the threshold holds
    assert holds("a / b <= 0.1", a=10**17, b=10**18)
    assert holds("x == 1.5e18", x=15 * 10**17)


def test_division_by_zero_is_infinite_and_zero_over_zero_compares_false() -> None:
    assert holds("a / b > 1e70", a=1, b=0)
    assert holds("-a / b < 0", a=1, b=0)
    assert not holds("a / b >= 0", a=0, b=0) and not holds("a / b < 0", a=0, b=0)


def test_scale_compares_token_amounts_of_different_decimals() -> None:
    usdc, weth = 1_500_000, 15 * 10**17  # 1.5 in 6 decimals and in 18
    assert holds("scale(usdc, 6, 18) == weth && scale(weth, 18, 6) == usdc", usdc=usdc, weth=weth)
    assert holds("scale(1, 18, 6) > 0 && int(scale(1, 18, 6)) == 0")  # exact: the fraction is kept
    assert holds("scale(usdc + 1, 6, 18) > weth", usdc=usdc, weth=weth)


def test_helpers_and_string_functions() -> None:
    assert holds("deviation(price, ref) < 0.05 && abs(-1) == 1 && max(1, 2) == 2 && min(1, 2) == 1",
                 price=102, ref=100)  # fmt: skip
    assert not holds("deviation(price, ref) < 0.05", price=110, ref=100)
    assert holds("data.startsWith('0x9f') && lower('AB') == 'ab' && size(xs) == 2 && xs.size() == 2",
                 data="0x9f38", xs=[1, 2])  # fmt: skip
    assert holds("int(7 / 2) == 3 && double(1) == 1.0 && string(5) == '5' && uint(3u) == 3")


def test_macros_bind_their_variable() -> None:
    expr = Expression("xs.exists(x, x > 1) && xs.all(y, y >= 0)", "m", allowed={"xs"})
    assert expr.holds({"xs": [0, 2]})
    assert expr.variables == {"xs"}
    assert holds(
        "xs.filter(x, x > 1) == [2] && xs.map(x, x * 2) == [0, 4] && xs.exists_one(x, x == 0)", xs=[0, 2]
    )
    with pytest.raises(DetectionError, match="zs"):
        Expression("xs.exists(x, x > zs)", "m", allowed={"xs"})


def test_logical_operators_absorb_an_error_the_other_side_decides() -> None:
    assert holds("true || m.missing > 1", m={})
    assert not holds("m.missing > 1 && false", m={})
    with pytest.raises(DetectionError, match="no such key"):
        holds("m.missing > 1 || false", m={})


def test_unknown_names_and_functions_are_refused_when_the_monitor_is_built() -> None:
    with pytest.raises(DetectionError) as info:
        Expression("args.amount > 0 && txx.value > 0", "big", allowed={"args", "tx"})
    assert info.value.monitor_id == "big" and "txx" in str(info.value)
    with pytest.raises(DetectionError, match="unknown function 'sqrt'"):
        Expression("sqrt(x) > 1", "m")


@pytest.mark.parametrize("source", ["a >", "(a", "a +", "a ? b", "'unterminated", "xs.exists(1, true)"])
def test_a_syntax_error_names_the_monitor(source: str) -> None:
    with pytest.raises(DetectionError) as info:
        Expression(source, "broken")
    assert "broken" in str(info.value)


def test_a_non_boolean_result_or_a_type_error_is_a_detection_error() -> None:
    with pytest.raises(DetectionError, match="not true/false"):
        Expression("a + 1", "m").holds({"a": 1})
    with pytest.raises(DetectionError, match="no such overload"):
        Expression("a + 'x' == 'y'", "m").holds({"a": 1})
    with pytest.raises(DetectionError, match="no such overload"):
        Expression("a > 5", "m").holds({"a": "0xab"})
    assert not holds("flag == 1", flag=True)  # a bool is not a number


def test_integer_arithmetic_on_amounts_works_as_written() -> None:
    expr = Expression("price * 100 <= reference * 105 && price * 100 >= reference * 95", "band")
    assert expr.holds(to_cel({"price": 102, "reference": 100}))
    assert not expr.holds(to_cel({"price": 110 * 10**18, "reference": 100 * 10**18}))


def test_strict_mode_for_check_forgives_no_error_that_a_false_side_would_hide() -> None:
    source = "xs.exists(x, x.amont > 1 && x.amount > 5)"
    values = {"xs": [{"amount": 1}]}
    assert compile_expression(source).run(values) is False  # run time: CEL's absorption
    with pytest.raises(EvalError, match=r"no such key: 'amont'.*did you mean 'amount'"):
        compile_expression(source, strict=True).run(values)
