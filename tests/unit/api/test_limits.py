"""The JSON depth scan that runs before any parser: it agrees with the nesting of real documents
(strings full of brackets and escapes included), and cannot recurse whatever the input."""

from __future__ import annotations

import json
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from breakglass.api.limits import json_depth_exceeds
from breakglass.app import RECURSION_LIMIT, restore_recursion_limit

tricky = st.text(alphabet='[]{}"\\ax,:', max_size=8)
documents = st.recursive(
    st.none() | st.integers() | tricky,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(documents, st.integers(min_value=0, max_value=8))
def test_the_scan_agrees_with_the_parsed_depth(document: Any, limit: int) -> None:
    body = json.dumps(document).encode()
    assert json_depth_exceeds(body, limit) == (_depth(document) > limit)


def test_a_million_brackets_are_counted_without_recursion() -> None:
    assert json_depth_exceeds(b"[" * 1_000_000, 32)
    assert json_depth_exceeds(b'{"a":' * 1_000_000, 32)
    assert not json_depth_exceeds(b"[" + b"[]," * 300_000 + b"[]]", 32)  # wide, not deep


def test_the_recursion_limit_is_lowered_never_raised() -> None:
    before = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(100_000)  # what py_ecc and py-evm do on import
        assert restore_recursion_limit() == 100_000
        assert sys.getrecursionlimit() == RECURSION_LIMIT
        assert restore_recursion_limit(5000) == RECURSION_LIMIT  # never raised
        assert sys.getrecursionlimit() == RECURSION_LIMIT
    finally:
        sys.setrecursionlimit(before)
