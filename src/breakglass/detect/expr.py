"""CEL expressions over chain data: compile once, evaluate in microseconds, never ``eval``.

Values enter CEL in one predictable shape (``docs/detection.md``, "Expression language"):
- every number (uint256 amounts, block numbers, timestamps) is a CEL ``double``: exact up to 2**53,
  and ``a / b`` is a ratio, not a truncating division. Integer literals in an expression are read as
  doubles too (``price * 100 <= ref * 105`` works), except list indices (``xs[0]``);
- addresses are lowercase ``0x`` strings; ``bytes``/``bytesN`` are lowercase ``0x`` hex strings;
- structs and tuples are lists; named outputs of a call are also reachable by name.
Helper functions: ``abs(x)``, ``min(a, b)``, ``max(a, b)``, ``deviation(a, b)`` (``|a-b|/|b|``),
``lower(s)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import cel

from breakglass.errors import DetectionError

__all__ = ["Expression", "doubles", "to_cel"]


def to_cel(value: Any) -> Any:
    """A Python/ABI value as the CEL value the expression language documents."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else value
    if isinstance(value, Mapping):
        return {str(k): to_cel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_cel(v) for v in value]
    return str(value)


_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
"""The bound variable of a comprehension macro (``logs.exists(l, ...)``): CEL lists it among the
references, but it is the expression's own name, not an input."""
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+u?|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?u?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def doubles(source: str) -> str:
    """Rewrite integer literals as double literals, leaving strings and list indices alone."""
    out: list[str] = []
    brackets: list[bool] = []  # True: an index ``xs[...]``, False: a list literal ``[...]``
    previous = ""  # the last significant token, to tell an index from a list literal
    i = 0
    while i < len(source):
        ch = source[i]
        if ch in "'\"":
            end = i + 1
            while end < len(source) and source[end] != ch:
                end += 2 if source[end] == "\\" else 1
            out.append(source[i : end + 1])
            i, previous = end + 1, "literal"
            continue
        ident = _IDENT.match(source, i)
        if ident:
            out.append(ident.group())
            i, previous = ident.end(), "ident"
            continue
        number = _NUMBER.match(source, i)
        if number:
            text = number.group()
            in_index = bool(brackets) and brackets[-1]
            is_int = text[:2] in ("0x", "0X") or not any(c in text for c in ".eE")
            if is_int and not in_index and not text.endswith(("u", "U")):
                text = f"{int(text, 0)}.0"
            out.append(text)
            i, previous = number.end(), "literal"
            continue
        if ch == "[":
            brackets.append(previous in ("ident", ")", "]"))
        elif ch == "]" and brackets:
            brackets.pop()
        if not ch.isspace():
            previous = ch
        out.append(ch)
        i += 1
    return "".join(out)


def _deviation(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else (0.0 if a == b else float("inf"))


_FUNCTIONS: dict[str, Any] = {
    "abs": lambda x: abs(x),
    "min": lambda a, b: min(a, b),
    "max": lambda a, b: max(a, b),
    "deviation": _deviation,
    "lower": lambda s: str(s).lower(),
}


class Expression:
    """One compiled CEL expression of one monitor; ``evaluate`` returns its (boolean) result."""

    def __init__(self, source: str, monitor_id: str, *, allowed: set[str] | None = None) -> None:
        self.source = source
        self.monitor_id = monitor_id
        try:
            self._program = cel.compile(doubles(source))
        except (ValueError, RuntimeError) as exc:
            raise DetectionError(monitor_id, f"invalid CEL {source!r}: {str(exc).splitlines()[0]}") from None
        refs = self._program.references()
        self.variables: set[str] = {v.split(".")[0] for v in refs.get("variables", [])}
        self._functions = {f: _FUNCTIONS[f] for f in refs.get("functions", []) if f in _FUNCTIONS}
        if allowed is not None:
            unknown = sorted(self.variables - allowed - set(_MACRO_VARIABLE.findall(source)))
            if unknown:
                known = ", ".join(sorted(allowed))
                raise DetectionError(monitor_id, f"unknown name(s) {unknown} in {source!r} (known: {known})")

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate with already-converted variables (see ``to_cel``)."""
        # Only the names the expression uses cross into CEL: converting a whole transaction and the
        # contract map per evaluation cost ~100 us, the one or two names it reads ~10 us.
        used = {name: variables[name] for name in self.variables if name in variables}
        try:
            if self._functions:
                context = cel.Context()
                for name, fn in self._functions.items():
                    context.add_function(name, fn)
                context.update(used)
                return self._program.execute(context)
            return self._program.execute(used)
        except (TypeError, ValueError, RuntimeError, OverflowError, KeyError) as exc:
            raise DetectionError(self.monitor_id, f"{self.source!r}: {str(exc).splitlines()[0]}") from None

    def holds(self, variables: Mapping[str, Any]) -> bool:
        result = self.evaluate(variables)
        if not isinstance(result, bool):
            raise DetectionError(self.monitor_id, f"{self.source!r} gave {result!r}, not true/false")
        return result
