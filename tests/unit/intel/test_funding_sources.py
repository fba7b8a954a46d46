"""Funding sources (mixer hops) in a shared bundle: exported apart from the attackers, read back as
funding, and turned into taint sources by the set-up monitor of the peer that pulls them."""

from __future__ import annotations

import json
from pathlib import Path

from stix2validator import ValidationOptions, validate_string
from test_bundles import ATTACKER, DAY_MS, NOW_MS, signed, source  # type: ignore[import-not-found]

from breakglass.config.monitors import IntelMonitor, SetupMonitor
from breakglass.detect.base import BlockContext
from breakglass.detect.intel import IntelDetector
from breakglass.detect.setup import SetupDetector
from breakglass.domain import Block, Receipt, Severity, Tx
from breakglass.intel.bundle import FUNDING_ROLE, parse_indicators
from breakglass.intel.feed import FeedIndicators, pull_sources, read_store
from breakglass.intel.gather import intel_from_timeline

HOP = "0x" + "88" * 20
MIXER = "0x" + "33" * 20
PATH = ((ATTACKER, HOP, MIXER),)
NEWCOMER = "0x" + "44" * 20
STRANGER = "0x" + "55" * 20
CONTRACT_B = "0x" + "66" * 20
VAULT = "0x" + "77" * 20


def test_funding_sources_are_exported_apart_from_attackers_and_the_bundle_stays_valid() -> None:
    bundle = signed(funding=PATH)
    result = validate_string(json.dumps(bundle), ValidationOptions())
    assert result.is_valid, [str(e) for e in result.errors]
    sources = {
        o["pattern"].split("'")[1]: o for o in bundle["objects"] if o.get("x_breakglass_role") == FUNDING_ROLE
    }
    assert {a: o["x_breakglass_funding_hop"] for a, o in sources.items()} == {HOP: 1, MIXER: 2}
    assert all(o["indicator_types"] == ["anonymization"] for o in sources.values())
    assert all([p["phase_name"] for p in o["kill_chain_phases"]] == ["funding"] for o in sources.values())
    ids = {o["id"]: o["pattern"].split("'")[1] for o in bundle["objects"] if o["type"] == "indicator"}
    edges = {
        (ids[o["source_ref"]], ids[o["target_ref"]])
        for o in bundle["objects"]
        if o["type"] == "relationship" and o["relationship_type"] == "funded-by"
    }
    assert edges == {(ATTACKER, HOP), (HOP, MIXER)}
    [report] = [o for o in bundle["objects"] if o["type"] == "report"]
    assert {o["id"] for o in bundle["objects"] if o["type"] == "relationship"} <= set(report["object_refs"])


def test_funding_sources_are_read_back_as_funding_never_as_accounts() -> None:
    kinds = {(i.kind, i.value) for i in parse_indicators(signed(funding=PATH))}
    assert {("funding", HOP), ("funding", MIXER), ("account", ATTACKER)} <= kinds
    assert ("account", HOP) not in kinds and ("account", MIXER) not in kinds


def test_a_bundle_without_funding_has_no_relationships() -> None:
    assert not [o for o in signed()["objects"] if o["type"] == "relationship"]


def test_a_setup_findings_funding_path_becomes_the_incidents_funding() -> None:
    from breakglass.incidents.models import Incident
    from breakglass.messages.incidents import TimelineEntry, TimelineKind

    incident = Incident(
        id="inc-1", title="t", protocol="p", severity=int(Severity.HIGH), onset_at=1, detected_at=1
    )
    evidence = {"signal": "tainted-deployment", "actor": ATTACKER, "funding": [ATTACKER, HOP, MIXER]}
    entry = TimelineEntry(1, "inc-1", TimelineKind.FINDING, "detector", 1, {"evidence": evidence}, "00")
    intel = intel_from_timeline(incident, [entry], chain_id=1, protocol_addresses=[MIXER])
    assert intel.funding == ((ATTACKER, HOP),)  # never past one of ours
    assert intel.accounts == (ATTACKER,)


def test_pull_keeps_funding_sources_in_the_store(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(signed(funding=PATH)), encoding="utf-8")
    pull_sources([source(file="a.json", ttl_hours=48)], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    stored = {(i.kind, i.value) for i in read_store(tmp_path / "intel.json")}
    assert {("funding", HOP), ("funding", MIXER)} <= stored


def _pulled(tmp_path: Path) -> Path:
    (tmp_path / "a.json").write_text(json.dumps(signed(funding=PATH)), encoding="utf-8")
    pull_sources([source(file="a.json", ttl_hours=48)], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    return tmp_path / "intel.json"


def _setup(store: Path, sources: list[str]) -> SetupDetector:
    cfg = SetupMonitor(id="setup", kind="setup", protocol=["vault"], hops=1, sources=sources)
    return SetupDetector(cfg, [VAULT], (), FeedIndicators(store, cfg.sources))


def _block(number: int, timestamp_ms: int, *txs: Tx) -> BlockContext:
    block = Block(number, f"0x{number:064x}", f"0x{number - 1:064x}", timestamp_ms // 1000, 1, txs)
    return BlockContext(31337, block, {}, (), {})


def _transfer(sender: str, to: str | None, value: int = 0, created: str | None = None) -> Tx:
    tx_hash = f"0x{hash((sender, to, value, created)) & (2**256 - 1):064x}"
    receipt = Receipt(tx_hash, 1, 21000, 1, created, ())
    return Tx(tx_hash, sender, to, value, b"", 0, 21000, None, None, 1, 0, receipt)


def test_a_pulled_funding_source_taints_the_accounts_it_funds(tmp_path: Path) -> None:
    detector = _setup(_pulled(tmp_path), ["venue-a"])
    detector.on_block(_block(1, NOW_MS, _transfer(MIXER, NEWCOMER, 10**18)))
    [found] = detector.on_block(_block(2, NOW_MS, _transfer(NEWCOMER, None, created=CONTRACT_B)))
    assert found.evidence["signal"] == "tainted-deployment" and found.severity is Severity.HIGH
    assert found.evidence["funding"] == [NEWCOMER, MIXER]
    assert found.evidence["funding_intel"]["source"] == "venue-a"
    assert found.evidence["funding_intel"]["shared_incident"] == "inc-0123456789"


def test_a_funding_source_is_not_matched_as_an_attacker(tmp_path: Path) -> None:
    store = _pulled(tmp_path)
    intel = IntelDetector(IntelMonitor(id="shared", kind="intel", sources=["venue-a"]), tmp_path, store)
    paid = intel.on_block(_block(1, NOW_MS, _transfer(MIXER, NEWCOMER, 10**18)))
    assert paid == []  # a mixer paying someone is not an attack
    assert [
        f.evidence["indicator"] for f in intel.on_block(_block(2, NOW_MS, _transfer(ATTACKER, VAULT)))
    ] == [ATTACKER]


def test_a_setup_monitor_without_the_source_ignores_its_funding(tmp_path: Path) -> None:
    detector = _setup(_pulled(tmp_path), ["venue-b"])
    detector.on_block(_block(1, NOW_MS, _transfer(MIXER, NEWCOMER, 10**18)))
    assert detector.on_block(_block(2, NOW_MS, _transfer(NEWCOMER, None, created=CONTRACT_B))) == []


def test_an_expired_funding_source_stops_tainting_but_what_it_tainted_stays(tmp_path: Path) -> None:
    detector = _setup(_pulled(tmp_path), ["venue-a"])
    detector.on_block(_block(1, NOW_MS, _transfer(MIXER, NEWCOMER, 1)))
    later = NOW_MS + 2 * DAY_MS  # past the source's 48 h
    detector.on_block(_block(2, later, _transfer(MIXER, STRANGER, 1)))
    assert not detector.tainted(MIXER) and not detector.tainted(STRANGER)
    assert detector.tainted(NEWCOMER)
    detector.rewind(1)  # the expiry was on an orphaned block: the source is back
    assert detector.tainted(MIXER)


def test_an_imported_source_survives_a_snapshot(tmp_path: Path) -> None:
    store = _pulled(tmp_path)
    detector = _setup(store, ["venue-a"])
    detector.on_block(_block(1, NOW_MS))
    restored = _setup(store, ["venue-a"])
    restored.restore(detector.snapshot())
    assert restored.tainted(MIXER) and restored.imported == {HOP, MIXER}
    restored.on_block(_block(2, NOW_MS, _transfer(MIXER, NEWCOMER, 1)))
    assert restored.funding(NEWCOMER) == [NEWCOMER, MIXER]


def test_a_reorg_below_the_import_takes_it_back_and_the_new_branch_imports_it_again(tmp_path: Path) -> None:
    detector = _setup(tmp_path / "intel.json", ["venue-a"])
    detector.on_block(_block(1, NOW_MS))
    _pulled(tmp_path)  # a pull between blocks 1 and 2
    detector.on_block(_block(2, NOW_MS, _transfer(MIXER, NEWCOMER, 1)))
    assert detector.tainted(NEWCOMER)
    detector.rewind(1)
    assert not detector.tainted(MIXER) and not detector.tainted(NEWCOMER)
    detector.on_block(_block(2, NOW_MS, _transfer(MIXER, NEWCOMER, 1)))
    assert detector.funding(NEWCOMER) == [NEWCOMER, MIXER]
