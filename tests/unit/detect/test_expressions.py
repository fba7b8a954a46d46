"""CEL expressions: one value shape, helper functions, unknown names caught at build time."""

from __future__ import annotations

import pytest

from breakglass.detect.expr import Expression, doubles, to_cel
from breakglass.errors import DetectionError


def test_values_enter_cel_in_one_shape() -> None:
    shaped = to_cel({"amount": 10**24, "who": "0xAbC", "raw": b"\x01\x02", "ok": True, "xs": (1, "a")})
    assert shaped == {"amount": 1e24, "who": "0xabc", "raw": "0x0102", "ok": True, "xs": [1.0, "a"]}


def test_large_amounts_compare_and_divide_as_ratios() -> None:
    expr = Expression("assets / liabilities >= 0.99 && assets > 0", "m")
    assert expr.holds(to_cel({"assets": 10**24, "liabilities": 10**24 + 10**20}))
    assert not expr.holds(to_cel({"assets": 98 * 10**22, "liabilities": 10**24}))


def test_helper_functions_are_available() -> None:
    expr = Expression("deviation(price, ref) < 0.05 && abs(-1.0) == 1.0 && max(1.0, 2.0) == 2.0", "m")
    assert expr.holds({"price": 102.0, "ref": 100.0})
    assert not expr.holds({"price": 110.0, "ref": 100.0})


def test_unknown_names_are_refused_when_the_monitor_is_built() -> None:
    with pytest.raises(DetectionError) as info:
        Expression("args.amount > 0 && txx.value > 0", "big", allowed={"args", "tx"})
    assert info.value.monitor_id == "big" and "txx" in str(info.value)


def test_a_syntax_error_names_the_monitor() -> None:
    with pytest.raises(DetectionError) as info:
        Expression("a >", "broken")
    assert "broken" in str(info.value)


def test_a_non_boolean_result_or_a_type_error_is_a_detection_error() -> None:
    with pytest.raises(DetectionError):
        Expression("a + 1", "m").holds({"a": 1.0})
    with pytest.raises(DetectionError):
        Expression("a + 'x' == 'y'", "m").holds({"a": 1.0})


@pytest.mark.parametrize(
    ("source", "rewritten"),
    [
        ("price * 100 <= reference * 105", "price * 100.0 <= reference * 105.0"),
        ("xs[0] > 1", "xs[0] > 1.0"),
        ("[1, 2][1] == 2", "[1.0, 2.0][1] == 2.0"),
        ("a == '100' && b > 0x10", "a == '100' && b > 16.0"),
        ("x > 1e18 && y < 2.5 && z == 3u", "x > 1e18 && y < 2.5 && z == 3u"),
    ],
)
def test_integer_literals_are_read_as_doubles_except_indices_and_strings(source: str, rewritten: str) -> None:
    assert doubles(source) == rewritten


def test_integer_arithmetic_on_amounts_works_as_written() -> None:
    expr = Expression("price * 100 <= reference * 105 && price * 100 >= reference * 95", "band")
    assert expr.holds(to_cel({"price": 102, "reference": 100}))
    assert not expr.holds(to_cel({"price": 110 * 10**18, "reference": 100 * 10**18}))


def test_a_comprehension_variable_is_not_an_unknown_name() -> None:
    expr = Expression("xs.exists(x, x > 1) && xs.all(y, y >= 0.0)", "m", allowed={"xs"})
    assert expr.holds({"xs": [0.0, 2.0]})
    with pytest.raises(DetectionError, match="zs"):
        Expression("xs.exists(x, x > zs)", "m", allowed={"xs"})
