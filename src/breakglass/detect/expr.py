"""CEL expressions over chain data with exact numbers: parsed once into closures, never ``eval``.

Why not a CEL library: CEL's numbers are int64, uint64 and double (the specification; every
implementation on PyPI follows it), and an ABI amount is a uint256: as a double it is exact only to
2^53 (0.009 ETH in wei), so ``cash == held`` on an 18-decimal token was decided on rounded values.
breakglass parses CEL's grammar itself (``syntax.py``: the operators, macros and functions listed in
docs/detection.md) and evaluates it with Python's integers and exact fractions:

- every ABI integer (``uint8``..``uint256``, ``int8``..``int256``), block number, timestamp and integer
  literal is an exact integer of any size; a decimal literal (``0.99``, ``1.5e18``) is the exact
  decimal it reads, not a double;
- ``+ - *`` are exact; ``a / b`` is the exact quotient (``7 / 2 == 3.5``), so ratios compare exactly;
  ``%`` is the remainder; ``int(x)`` truncates toward zero; ``double(x)`` asks for a float;
- a division by zero gives infinity (0/0 gives NaN, false in every comparison), as doubles did;
- ``scale(x, from_decimals, to_decimals)`` is ``x * 10^(to - from)``, exact: token amounts of different
  decimals compare as the same unit (``scale(usdc, 6, 18) <= weth``).

Other values: addresses are lowercase ``0x`` strings; ``bytes``/``bytesN`` lowercase ``0x`` hex strings;
structs and tuples are lists; the named outputs of a call are also reachable by name.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from breakglass.detect.lexer import tokenize
from breakglass.detect.syntax import EvalError, Program, compile_expression
from breakglass.errors import DetectionError

__all__ = ["Expression", "compile_expression", "to_cel"]


def to_cel(value: Any) -> Any:
    """A Python/ABI value as the expression language documents it (integers stay exact)."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else value
    if isinstance(value, Mapping):
        return {str(k): to_cel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_cel(v) for v in value]
    return str(value)


_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _argument_test(source: str) -> tuple[str, Callable[[int, int], bool], int] | None:
    """(argument, comparison, literal) of an expression that compares one event or call argument
    with an integer literal and does nothing else (``args.amount > 0``); None for any other."""
    try:
        tokens = tokenize(source)
    except ValueError:
        return None
    shape = [(t.kind, t.text) for t in tokens]
    if len(tokens) != 6 or shape[0] != ("ident", "args") or shape[1] != ("op", ".") or shape[5][0] != "end":
        return None
    name, comparison, literal = tokens[2], tokens[3], tokens[4]
    if name.kind != "ident" or comparison.kind != "op" or comparison.text not in _COMPARISONS:
        return None
    if literal.kind != "number" or type(literal.value) is not int:
        return None
    return name.text, _COMPARISONS[comparison.text], literal.value


class Expression:
    """One compiled expression of one monitor; ``evaluate`` returns its value, ``holds`` its verdict."""

    def __init__(self, source: str, monitor_id: str, *, allowed: set[str] | None = None) -> None:
        self.source = source
        self.monitor_id = monitor_id
        try:
            self._program: Program = compile_expression(source)
        except ValueError as exc:
            raise DetectionError(monitor_id, f"invalid CEL {source!r}: {exc}") from None
        self.variables: set[str] = set(self._program.variables)
        if allowed is not None:
            unknown = sorted(self.variables - allowed)
            if unknown:
                known = ", ".join(sorted(allowed))
                raise DetectionError(monitor_id, f"unknown name(s) {unknown} in {source!r} (known: {known})")
        self._test = _argument_test(source)

    def decide(self, arguments: Mapping[str, Any]) -> bool | None:
        """The verdict from the decoded (not yet converted) arguments alone, when the expression
        compares one argument with an integer literal and that argument is an integer: what ``holds``
        gives, without building its variables (an event monitor's usual filter, evaluated on every
        matching log of a backfill). None otherwise: evaluate it as usual."""
        test = self._test
        if test is None:
            return None
        value = arguments.get(test[0])
        if type(value) is not int:  # missing, a bool, anything else: the general path says what it is
            return None
        return test[1](value, test[2])

    def __reduce__(self) -> tuple[Any, ...]:
        # compiled into closures: recompiled from the source on the other side (the backfill worker)
        return (Expression, (self.source, self.monitor_id))

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate with already-converted variables (see ``to_cel``)."""
        try:
            return self._program.run(variables)
        except EvalError as exc:
            raise DetectionError(self.monitor_id, f"{self.source!r}: {exc}") from None

    def holds(self, variables: Mapping[str, Any]) -> bool:
        result = self.evaluate(variables)
        if not isinstance(result, bool):
            raise DetectionError(self.monitor_id, f"{self.source!r} gave {result!r}, not true/false")
        return result
