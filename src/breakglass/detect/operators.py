"""The values of the expression language and what operators and functions do to them, exactly.

Numbers are Python ``int`` (every ABI integer, any size), ``Fraction`` (decimal literals, quotients)
and, only when asked for with ``double()``, ``float``. Types are strict as in CEL: no string + number,
no arithmetic on booleans; a mismatch is ``EvalError("no such overload: _+_(int, string)")``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

__all__ = ["BINARY", "FUNCTIONS", "EvalError", "exact", "is_number", "kind_of", "overload", "scale"]


class EvalError(Exception):
    """An expression could not be evaluated on these values (CEL's runtime error)."""


def is_number(value: Any) -> bool:
    return type(value) in (int, Fraction, float)


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if type(value) is int:
        return "int"
    if type(value) is Fraction:
        return "decimal"
    if type(value) is float:
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    if value is None:
        return "null"
    return type(value).__name__


def overload(op: str, *values: Any) -> EvalError:
    return EvalError(f"no such overload: {op}({', '.join(kind_of(v) for v in values)})")


def exact(value: Fraction) -> int | Fraction:
    return value.numerator if value.denominator == 1 else value


def _equal(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return kind_of(a) == kind_of(b) and bool(a == b)


def _add(a: Any, b: Any) -> Any:
    if is_number(a) and is_number(b):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    raise overload("_+_", a, b)


def _sub(a: Any, b: Any) -> Any:
    if is_number(a) and is_number(b):
        return a - b
    raise overload("_-_", a, b)


def _mul(a: Any, b: Any) -> Any:
    if is_number(a) and is_number(b):
        return a * b
    raise overload("_*_", a, b)


def _div(a: Any, b: Any) -> Any:
    if not (is_number(a) and is_number(b)):
        raise overload("_/_", a, b)
    if b == 0:  # as doubles did: a ratio over nothing is infinite, 0/0 compares false to everything
        return math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1, b)
    if type(a) is float or type(b) is float:
        return a / b
    return exact(Fraction(a) / b)


def _mod(a: Any, b: Any) -> Any:
    if not (is_number(a) and is_number(b)):
        raise overload("_%_", a, b)
    if b == 0:
        raise EvalError("modulus by zero")
    return math.fmod(a, b) if type(a) is float or type(b) is float else a - b * int(Fraction(a) / b)


def _ordered(op: str, compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def run(a: Any, b: Any) -> bool:
        if (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return compare(a, b)
        if isinstance(a, bool) and isinstance(b, bool):
            return compare(a, b)
        raise overload(op, a, b)

    return run


def _in(a: Any, b: Any) -> bool:
    if isinstance(b, list):
        return any(_equal(a, x) for x in b)
    if isinstance(b, Mapping):
        return any(_equal(a, k) for k in b)
    raise overload("@in", a, b)


BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": _ordered("_<_", lambda a, b: a < b),
    "<=": _ordered("_<=_", lambda a, b: a <= b),
    ">": _ordered("_>_", lambda a, b: a > b),
    ">=": _ordered("_>=_", lambda a, b: a >= b),
    "in": _in,
}


def _number(name: str, value: Any) -> Any:
    if not is_number(value):
        raise overload(name, value)
    return value


def _deviation(a: Any, b: Any) -> Any:
    """|a - b| / |b|: how far ``a`` is from the reference ``b``, as a fraction of it."""
    return _div(abs(_number("deviation", a) - _number("deviation", b)), abs(b))


def scale(x: Any, from_decimals: Any, to_decimals: Any) -> Any:
    """``x`` in units of ``from_decimals`` decimals, expressed in ``to_decimals``: exact (scaling
    down keeps the fraction; ``int()`` truncates it)."""
    _number("scale", x)
    if type(from_decimals) is not int or type(to_decimals) is not int:
        raise overload("scale", x, from_decimals, to_decimals)
    shift = to_decimals - from_decimals
    if type(x) is float:
        return x * 10.0**shift
    return exact(Fraction(x) * Fraction(10) ** shift)


def _to_int(value: Any) -> int:
    if is_number(value):
        if type(value) is float and not math.isfinite(value):
            raise EvalError(f"int() of {value}")
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            raise EvalError(f"int() of {value!r}") from None
    raise overload("int", value)


def _to_uint(value: Any) -> int:
    result = _to_int(value)
    if result < 0:
        raise EvalError(f"uint() of a negative value {result}")
    return result


def _to_double(value: Any) -> float:
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise EvalError(f"double() of {value!r}") from None
    raise overload("double", value)


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if type(value) is Fraction:
        return str(float(value))
    if is_number(value) or isinstance(value, str):
        return str(value)
    raise overload("string", value)


def _size(value: Any) -> int:
    if isinstance(value, str | list | Mapping):
        return len(value)
    raise overload("size", value)


def _extreme(name: str, pick: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        if not values or not all(is_number(v) for v in values):
            raise overload(name, *values)
        return pick(values)

    return run


def _string_method(name: str, run: Callable[[str, str], Any]) -> Callable[[Any, Any], Any]:
    def method(text: Any, arg: Any) -> Any:
        if not (isinstance(text, str) and isinstance(arg, str)):
            raise overload(name, text, arg)
        return run(text, arg)

    return method


def _lower(value: Any) -> str:
    if not isinstance(value, str):
        raise overload("lower", value)
    return value.lower()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "size": _size,
    "int": _to_int,
    "uint": _to_uint,
    "double": _to_double,
    "string": _to_string,
    "abs": lambda x: abs(_number("abs", x)),
    "min": _extreme("min", min),
    "max": _extreme("max", max),
    "deviation": _deviation,
    "scale": scale,
    "lower": _lower,
    "startsWith": _string_method("startsWith", lambda s, p: s.startswith(p)),
    "endsWith": _string_method("endsWith", lambda s, p: s.endswith(p)),
    "contains": _string_method("contains", lambda s, p: p in s),
    "matches": _string_method("matches", lambda s, p: re.search(p, s) is not None),
}
"""Global functions; each also callable as a method on its first argument (``x.size()``)."""
