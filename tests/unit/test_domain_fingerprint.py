"""Fingerprints are stored and compared across runs and versions: the fast path for plain parts must
write exactly what the general path (``json.dumps`` of the canonical form) writes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from breakglass.domain import Finding, FindingStage, Severity, _canonical, fingerprint_of


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


SUBJECT = st.one_of(st.none(), st.just(""), st.just("0x" + "ab" * 32), TEXT)


@settings(max_examples=300, deadline=None)
@given(
    monitor=TEXT,
    chain=st.integers(min_value=0, max_value=2**64),
    block=st.integers(min_value=0, max_value=2**40),
    tx=SUBJECT,
    index=st.one_of(st.none(), st.integers(min_value=0, max_value=2**20)),
    labels=st.dictionaries(TEXT, TEXT, max_size=4),
)
def test_a_finding_hashes_its_parts_as_fingerprint_of_does(
    monitor: str, chain: int, block: int, tx: str | None, index: int | None, labels: dict[str, str]
) -> None:
    finding = Finding(
        monitor_id=monitor,
        severity=Severity.HIGH,
        chain_id=chain,
        block_number=block,
        title="t",
        tx_hash=tx,  # type: ignore[arg-type]
        log_index=index,
        labels=labels,
    )
    subject = tx or block
    assert finding.fingerprint == reference(monitor, chain, subject, index, labels)
    assert finding.breach == reference("breach", monitor, chain, subject, labels)


def test_findings_keep_the_fingerprints_and_breaches_main_stored() -> None:
    # written by main before the shared-parts hashing (issue 19, third pass): stored alerts dedup on them
    logged = Finding(
        monitor_id="ev-0",
        severity=Severity.HIGH,
        chain_id=31337,
        block_number=812,
        title="vault.Deposit",
        tx_hash="0x" + "ab" * 32,  # type: ignore[arg-type]
        log_index=1,
        labels={"protocol": "bench", "market": "2"},
    )
    assert (logged.fingerprint, logged.breach) == (
        "703959ef322f7eb5a64a6e3a87599ee9",
        "35c8304197db98b3f68fd4b6461cf83c",
    )
    per_block = Finding(
        monitor_id="inv-3", severity=Severity.HIGH, chain_id=31337, block_number=812, title="x"
    )
    assert (per_block.fingerprint, per_block.breach) == (
        "7e4665ba2674b91fb53cba8a64a29674",
        "f2206261a84e452689fc4e052a9c200c",
    )
