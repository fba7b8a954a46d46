"""``FindingHasher.build`` (the findings of a monitor's maker, built without the dataclass ``__init__``)
must give the very finding ``Finding(...)`` gives: every field, the fingerprint and the breach, which
alerts dedup on and store across versions."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from breakglass.detect.base import BlockContext, FindingMaker
from breakglass.domain import (
    _FINDING_FIELDS,
    Block,
    Finding,
    FindingHasher,
    FindingStage,
    Hash32,
    Log,
    Severity,
    Tx,
    _build_finding,
)

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
HASH = st.one_of(st.none(), st.just(""), st.just("0x" + "ab" * 32), TEXT)
LABELS = st.dictionaries(TEXT, TEXT, max_size=4)


def fields(finding: Finding) -> dict[str, Any]:
    return {name: getattr(finding, name) for name in _FINDING_FIELDS}


def test_the_slot_builder_takes_every_field_in_declaration_order() -> None:
    values: dict[str, Any] = {name: f"value-{name}" for name in _FINDING_FIELDS}
    built = _build_finding(*values.values())
    assert fields(built) == values
    assert [f.name for f in dataclasses.fields(Finding)] == list(_FINDING_FIELDS)


@settings(max_examples=400, deadline=None)
@given(
    monitor=TEXT,
    chain=st.integers(min_value=0, max_value=2**64),
    block=st.integers(min_value=0, max_value=2**40),
    block_hash=HASH,
    tx=HASH,
    index=st.one_of(st.none(), st.integers(min_value=0, max_value=2**20)),
    labels=st.one_of(LABELS, st.just({"odd": ["not", "plain"]})),
    breach=st.one_of(st.just(""), TEXT),
    severity=st.sampled_from(list(Severity)),
)
def test_a_hashed_finding_is_the_finding_the_dataclass_builds(
    monitor: str,
    chain: int,
    block: int,
    block_hash: str | None,
    tx: str | None,
    index: int | None,
    labels: dict[str, Any],
    breach: str,
    severity: Severity,
) -> None:
    evidence = {"args": {"amount": 5}, "event": "Deposit"}
    expected = Finding(
        monitor_id=monitor,
        severity=severity,
        chain_id=chain,
        block_number=block,
        block_hash=block_hash,  # type: ignore[arg-type]
        title="t",
        tx_hash=tx,  # type: ignore[arg-type]
        log_index=index,
        labels=dict(labels),
        evidence=evidence,
        observed_at_ms=12.5,
        breach=breach,
    )
    hasher = FindingHasher(monitor, chain, labels)
    built = hasher.build(severity, block, block_hash, "t", tx, index, evidence, 12.5, breach)  # type: ignore[arg-type]
    assert fields(built) == fields(expected)
    assert built == expected
    assert built.stage is FindingStage.BLOCK
    assert built.labels is not hasher.labels  # each finding its own copy
    assert pickle.loads(pickle.dumps(built)) == expected
    try:
        built.title = "changed"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("a built finding must stay frozen")


def test_a_maker_builds_what_it_built_before_with_and_without_extra_labels() -> None:
    log = Log(Hash32("0xAbC"), (), b"", 3, Hash32("0x" + "cd" * 32), 0, 812, Hash32("0x" + "ef" * 32))  # type: ignore[arg-type]
    tx = Tx(Hash32("0x" + "cd" * 32), "0xs", None, 0, b"", 0, 0, None, None, None, 0)  # type: ignore[arg-type]
    block = Block(812, Hash32("0x" + "ef" * 32), Hash32("0x00"), 1, None, (tx,))
    make = FindingMaker("ev-0", "high", "vault.Deposit", {"protocol": "bench", "market": "2"})
    for chain in (31337, 1, 31337):  # the maker follows the context's chain
        ctx = BlockContext(chain, block, {}, [], {}, observed_at_ms=7.0)
        cases: list[dict[str, Any]] = [
            {"tx": tx, "log": log, "evidence": {"a": 1}},
            {"log": log},
            {},
            {"evidence": {"b": 2}, "title": "other", "severity": Severity.LOW, "breach": "x@1"},
            {"tx": tx, "labels": {"market": "3", "extra": "y"}},
        ]
        for case in cases:
            made = make(ctx, **case)
            expected = Finding(
                monitor_id="ev-0",
                severity=case.get("severity", Severity.HIGH),
                chain_id=chain,
                block_number=812,
                block_hash=block.hash,
                title=case.get("title", "vault.Deposit"),
                tx_hash=tx.hash if ("tx" in case or "log" in case) else None,
                log_index=3 if "log" in case else None,
                labels={"protocol": "bench", "market": "2", **case.get("labels", {})},
                evidence=dict(case.get("evidence", {})),
                observed_at_ms=7.0,
                breach=case.get("breach", ""),
            )
            assert fields(made) == fields(expected)
    # earlier versions stored this one (tests/unit/test_domain_fingerprint.py)
    ctx = BlockContext(31337, block, {}, [], {})
    made = make(ctx, tx=Tx(Hash32("0x" + "ab" * 32), "0xs", None, 0, b"", 0, 0, None, None, None, 0), log=log)  # type: ignore[arg-type]
    assert (made.fingerprint, made.breach) != ("", "")
    assert made.fingerprint == Finding(
        monitor_id="ev-0", severity=Severity.HIGH, chain_id=31337, block_number=812, title="x",
        tx_hash=Hash32("0x" + "ab" * 32), log_index=3, labels={"protocol": "bench", "market": "2"},
    ).fingerprint  # fmt: skip
