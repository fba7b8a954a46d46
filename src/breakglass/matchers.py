"""Matchers: ``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex``, ``severity>=x``.

One small language shared by routes, silences and inhibition rules, like Alertmanager's matchers;
it sits outside ``alerts`` because configuration validates it at load too.
An alert's matchable labels are its finding labels plus ``monitor``, ``severity``, ``stage`` and
``chain_id``; ``severity`` also accepts the ordered comparisons ``>=``, ``>``, ``<=``, ``<``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from breakglass.domain import Severity

__all__ = ["Matcher", "matches_all", "parse_matcher", "parse_matchers"]

_SYNTAX = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)\s*(?P<op>=~|!~|!=|>=|<=|=|>|<)\s*(?P<value>.*?)\s*$"
)
_ORDERED = {">=", ">", "<=", "<"}


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label. A missing label reads as the empty string, as in Alertmanager."""

    name: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        if self.op in ("=~", "!~"):
            found = re.fullmatch(self.value, actual) is not None
            return found if self.op == "=~" else not found
        if not actual:
            return False
        have, want = Severity.parse(actual), Severity.parse(self.value)
        return {">=": have >= want, ">": have > want, "<=": have <= want, "<": have < want}[self.op]


def parse_matcher(text: str) -> Matcher:
    """Parse ``name<op>value``; quotes around the value are optional. Raises ``ValueError``."""
    found = _SYNTAX.match(text)
    if found is None:
        raise ValueError(f"matcher {text!r} is not name=value, name!=value, name=~regex or name!~regex")
    name, op, value = found["name"], found["op"], found["value"]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"matcher {text!r}: bad regular expression: {exc}") from None
    if op in _ORDERED:
        if name != "severity":
            raise ValueError(f"matcher {text!r}: {op} compares severities only")
        Severity.parse(value)
    return Matcher(name, op, value)


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(t) for t in texts)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
