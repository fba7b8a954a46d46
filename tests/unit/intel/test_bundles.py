"""Signed STIX bundles: built valid under stix2-validator, verified offline, refused when unsigned,
tampered, untrusted or expired, and imported indicators matched by the intel monitor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stix2validator import ValidationOptions, validate_string

from breakglass.config.intel import IntelSourceConfig
from breakglass.config.monitors import IntelMonitor
from breakglass.detect.base import BlockContext
from breakglass.detect.intel import IntelDetector
from breakglass.domain import Block, Receipt, Severity, Tx
from breakglass.errors import IntelError
from breakglass.intel.bundle import AttackContract, IncidentIntel, build_bundle, parse_indicators
from breakglass.intel.feed import FeedIndicators, accept_bundle, pull_sources, read_store
from breakglass.intel.signing import SIGNATURE, sign_bundle, verify_bundle
from breakglass.metrics import INTEL_BUNDLES
from breakglass.respond.signer import LocalSigner

KEY_A = "0x" + "a1" * 32
KEY_OTHER = "0x" + "b2" * 32
ATTACKER = "0x" + "ab" * 20
CONTRACT = "0x" + "cd" * 20
CODE_HASH = "0x" + "ee" * 32
EXPLOIT_TX = "0x" + "0f" * 32
DAY_MS = 86_400_000
NOW_MS = 1_780_000_000_000


def intel(**overrides: Any) -> IncidentIntel:
    values: dict[str, Any] = {
        "incident_id": "inc-0123456789", "title": "share price manipulated", "protocol": "venue-a",
        "chain_id": 31337, "severity": "critical", "detected_at_ms": NOW_MS - DAY_MS,
        "accounts": (ATTACKER,),
        "contracts": (AttackContract(CONTRACT, CODE_HASH, ("0x12345678",), ATTACKER),),
        "transactions": (EXPLOIT_TX,),
    }  # fmt: skip
    values.update(overrides)
    return IncidentIntel(**values)


def signed(key: str = KEY_A, **overrides: Any) -> dict[str, Any]:
    return sign_bundle(build_bundle(intel(**overrides), producer="Venue A security", now_ms=NOW_MS),
                       LocalSigner.from_key(key))  # fmt: skip


def source(**overrides: Any) -> IntelSourceConfig:
    signer = LocalSigner.from_key(KEY_A).address
    values: dict[str, Any] = {
        "name": "venue-a",
        "file": "feeds/a.json",
        "signers": [signer],
        "severity": "critical",
    }
    values.update(overrides)
    return IntelSourceConfig(**values)


def test_an_exported_bundle_is_valid_stix_2_1_and_names_every_indicator() -> None:
    bundle = signed()
    result = validate_string(json.dumps(bundle), ValidationOptions())
    assert result.is_valid, [str(e) for e in result.errors]
    shared = {(i.kind, i.value) for i in parse_indicators(bundle)}
    assert shared == {("account", ATTACKER), ("account", CONTRACT), ("code_hash", CODE_HASH),
                      ("transaction", EXPLOIT_TX)}  # fmt: skip
    [report] = [o for o in bundle["objects"] if o["type"] == "report"]
    assert report["x_breakglass_incident"] == "inc-0123456789" and report["x_breakglass_chain_id"] == 31337
    [code] = [i for i in parse_indicators(bundle) if i.kind == "code_hash"]
    assert code.selectors == ("0x12345678",) and code.phases == ("setup",) and code.chain_id == 31337


def test_the_signature_is_verified_offline_and_names_the_signer() -> None:
    assert verify_bundle(signed()) == LocalSigner.from_key(KEY_A).address


def test_a_bundle_changed_after_signing_is_refused_as_tampered() -> None:
    bundle = signed()
    indicator = next(o for o in bundle["objects"] if o["type"] == "indicator")
    indicator["pattern"] = indicator["pattern"].replace(ATTACKER[2:], "00" * 20)
    with pytest.raises(IntelError) as info:
        verify_bundle(bundle)
    assert info.value.reason == "tampered"


def test_a_signature_claimed_for_another_signer_is_refused_as_tampered() -> None:
    bundle = signed(KEY_OTHER)
    bundle[SIGNATURE] = {**bundle[SIGNATURE], "signer": LocalSigner.from_key(KEY_A).address}
    with pytest.raises(IntelError) as info:
        verify_bundle(bundle)
    assert info.value.reason == "tampered"


def test_a_garbled_signature_is_refused_as_tampered() -> None:
    bundle = signed()
    bundle[SIGNATURE] = {**bundle[SIGNATURE], "signature": "0x1234"}
    with pytest.raises(IntelError) as info:
        verify_bundle(bundle)
    assert info.value.reason == "tampered"


def test_an_unsigned_bundle_is_refused() -> None:
    bundle = build_bundle(intel(), producer="Venue A security", now_ms=NOW_MS)
    with pytest.raises(IntelError) as info:
        accept_bundle(bundle, source(), now_ms=NOW_MS)
    assert info.value.reason == "unsigned"


def test_a_bundle_signed_by_a_key_the_source_does_not_trust_is_refused() -> None:
    with pytest.raises(IntelError) as info:
        accept_bundle(signed(KEY_OTHER), source(), now_ms=NOW_MS)
    assert info.value.reason == "untrusted" and LocalSigner.from_key(KEY_OTHER).address in info.value.message


def test_a_bundle_older_than_the_sources_ttl_is_refused_as_expired() -> None:
    with pytest.raises(IntelError) as info:
        accept_bundle(signed(), source(ttl_hours=12), now_ms=NOW_MS)
    assert info.value.reason == "expired"


def test_a_trusted_bundle_gives_its_indicators_the_sources_severity_and_confidence() -> None:
    imported = accept_bundle(signed(), source(confidence=60, ttl_hours=48), now_ms=NOW_MS)
    assert {(i.kind, i.value) for i in imported} >= {("account", ATTACKER), ("code_hash", CODE_HASH)}
    assert {i.severity for i in imported} == {"critical"} and {i.confidence for i in imported} == {60}
    assert {i.expires_at_ms for i in imported} == {NOW_MS + DAY_MS}


def test_pull_imports_trusted_bundles_and_counts_each_refusal(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "good.json").write_text(json.dumps(signed()), encoding="utf-8")
    (feeds / "other.json").write_text(json.dumps(signed(KEY_OTHER)), encoding="utf-8")
    tampered = signed()
    tampered["objects"][1]["confidence"] = 100
    (feeds / "tampered.json").write_text(json.dumps(tampered), encoding="utf-8")
    (feeds / "broken.json").write_text("{not json", encoding="utf-8")
    before = {
        r: INTEL_BUNDLES.labels("venue-a", r)._value.get() for r in ("accepted", "tampered", "untrusted")
    }
    [report] = pull_sources([source(file="feeds")], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    assert report.accepted == 1 and report.refused == {"untrusted": 1, "tampered": 1, "malformed": 1}
    for reason in ("accepted", "tampered", "untrusted"):
        assert INTEL_BUNDLES.labels("venue-a", reason)._value.get() == before[reason] + 1
    stored = read_store(tmp_path / "intel.json")
    expected = {
        ("account", ATTACKER),
        ("account", CONTRACT),
        ("code_hash", CODE_HASH),
        ("transaction", EXPLOIT_TX),
    }
    assert {(i.kind, i.value) for i in stored} == expected


def test_a_source_whose_bundle_is_gone_keeps_what_it_gave(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(signed()), encoding="utf-8")
    pull_sources([source(file="a.json")], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    (tmp_path / "a.json").unlink()
    [report] = pull_sources([source(file="a.json")], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    assert "not found" in report.problems[0] and len(read_store(tmp_path / "intel.json")) == 4


def _tx(sender: str, to: str | None, created: str | None = None) -> Tx:
    receipt = Receipt("0x" + "01" * 32, 1, 21000, 1, created, ())
    return Tx("0x" + "01" * 32, sender, to, 0, b"", 0, 21000, None, None, 1, 0, receipt)


def _ctx(tx: Tx, timestamp_ms: int, code_hashes: dict[str, str] | None = None) -> BlockContext:
    block = Block(7, "0x" + "07" * 32, "0x" + "06" * 32, timestamp_ms // 1000, 1, (tx,))
    return BlockContext(31337, block, {}, (), {}, code_hashes=code_hashes or {})


def test_an_imported_attacker_account_calling_us_is_a_finding_at_the_sources_severity(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(signed()), encoding="utf-8")
    pull_sources([source(file="a.json", ttl_hours=48)], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    cfg = IntelMonitor(id="shared", kind="intel", severity="low", sources=["venue-a"])
    detector = IntelDetector(cfg, tmp_path, tmp_path / "intel.json")
    assert detector.wants_code
    [finding] = detector.on_block(_ctx(_tx(ATTACKER, "0x" + "11" * 20), NOW_MS))
    assert finding.severity is Severity.CRITICAL and finding.labels["intel_source"] == "venue-a"
    assert finding.evidence["attacker"] == ATTACKER and finding.evidence["match"] == "sender"
    assert finding.evidence["shared_incident"] == "inc-0123456789"


def test_an_imported_code_hash_deployed_again_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(signed()), encoding="utf-8")
    pull_sources([source(file="a.json", ttl_hours=48)], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    detector = IntelDetector(IntelMonitor(id="shared", kind="intel", sources=["venue-a"]), tmp_path,
                             tmp_path / "intel.json")  # fmt: skip
    fresh = "0x" + "99" * 20
    found = detector.on_block(_ctx(_tx("0x" + "12" * 20, None, fresh), NOW_MS, {fresh: CODE_HASH}))
    assert [(f.evidence["match"], f.evidence["attacker"]) for f in found] == [("code_hash", "0x" + "12" * 20)]


def test_an_expired_indicator_matches_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(signed()), encoding="utf-8")
    pull_sources([source(file="a.json", ttl_hours=48)], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    detector = IntelDetector(IntelMonitor(id="shared", kind="intel", sources=["venue-a"]), tmp_path,
                             tmp_path / "intel.json")  # fmt: skip
    assert detector.on_block(_ctx(_tx(ATTACKER, None), NOW_MS + 2 * DAY_MS)) == []


def test_the_store_is_read_again_when_a_pull_changes_it(tmp_path: Path) -> None:
    feed = FeedIndicators(tmp_path / "intel.json")
    feed.refresh()
    assert feed.match(ATTACKER, NOW_MS) is None
    (tmp_path / "a.json").write_text(json.dumps(signed()), encoding="utf-8")
    pull_sources([source(file="a.json", ttl_hours=48)], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    feed.refresh()
    found = feed.match(ATTACKER, NOW_MS)
    assert found is not None and found.source == "venue-a"


async def test_serve_pulls_on_a_schedule_when_configured(tmp_path: Path) -> None:
    import asyncio

    from breakglass.app import build_app
    from breakglass.config import load_config

    (tmp_path / "a.json").write_text(json.dumps(signed()), encoding="utf-8")
    signer = LocalSigner.from_key(KEY_A).address
    path = tmp_path / "bg.yaml"
    source = f"{{name: venue-a, file: a.json, signers: ['{signer}'], ttl_hours: 87600}}"
    store = f"sqlite:///{tmp_path / 'bg.db'}"
    path.write_text(f"store: {{url: '{store}'}}\nintel:\n  pull_minutes: 60\n  sources:\n    - {source}\n",
                    encoding="utf-8")  # fmt: skip
    app = build_app(load_config(path, environ={}))
    puller = app.components.intel_pull
    stop = asyncio.Event()
    task = asyncio.create_task(puller.run(stop))
    try:
        for _ in range(3000):  # the first pull happens at start
            if puller.last:
                break
            await asyncio.sleep(0.01)
        assert puller.last[0].accepted == 1
        assert ("account", ATTACKER) in {
            (i.kind, i.value) for i in read_store(tmp_path / ".breakglass" / "intel.json")
        }
    finally:
        stop.set()
        await task
        await app.close()
