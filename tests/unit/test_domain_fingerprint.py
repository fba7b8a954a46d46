"""Fingerprints are stored and compared across runs and versions: the fast path for plain parts must
write exactly what the general path (``json.dumps`` of the canonical form) writes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from breakglass.domain import FindingStage, _canonical, fingerprint_of


def reference(*parts: Any) -> str:
    blob = json.dumps(_canonical(list(parts)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
PART = st.one_of(
    TEXT,
    st.integers(min_value=-(2**260), max_value=2**260),
    st.none(),
    st.dictionaries(TEXT, TEXT, max_size=4),
    st.booleans(),
    st.binary(max_size=8),
    st.sampled_from(list(FindingStage)),
)


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(PART, max_size=6))
def test_the_fast_path_writes_what_json_dumps_writes(parts: list[Any]) -> None:
    assert fingerprint_of(*parts) == reference(*parts)


def test_a_finding_fingerprint_is_the_one_earlier_versions_stored() -> None:
    parts = ("vault-drain", 31337, "0x" + "ab" * 32, 3, {"protocol": "venue", "market": "2"})
    assert fingerprint_of(*parts) == reference(*parts)
    assert fingerprint_of("m", 1, 7, None, {}) == reference("m", 1, 7, None, {})
    odd = {"b": ["list"], "a": {"nested": 1}}  # not str -> str: the general path
    assert fingerprint_of("m", odd) == reference("m", odd)
