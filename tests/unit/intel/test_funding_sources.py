"""Funding sources (mixer hops) in a shared bundle: exported apart from the attackers, read back as
funding, and turned into taint sources by the set-up monitor of the peer that pulls them."""

from __future__ import annotations

import json
from pathlib import Path

from stix2validator import ValidationOptions, validate_string
from test_bundles import ATTACKER, NOW_MS, signed, source  # type: ignore[import-not-found]

from breakglass.domain import Severity
from breakglass.intel.bundle import FUNDING_ROLE, parse_indicators
from breakglass.intel.gather import intel_from_timeline

HOP = "0x" + "88" * 20
MIXER = "0x" + "33" * 20
PATH = ((ATTACKER, HOP, MIXER),)


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
    from breakglass.incidents.messages import TimelineEntry, TimelineKind
    from breakglass.incidents.models import Incident

    incident = Incident(
        id="inc-1", title="t", protocol="p", severity=int(Severity.HIGH), onset_at=1, detected_at=1
    )
    evidence = {"signal": "tainted-deployment", "actor": ATTACKER, "funding": [ATTACKER, HOP, MIXER]}
    entry = TimelineEntry(1, "inc-1", TimelineKind.FINDING, "detector", 1, {"evidence": evidence}, "00")
    intel = intel_from_timeline(incident, [entry], chain_id=1, protocol_addresses=[MIXER])
    assert intel.funding == ((ATTACKER, HOP),)  # never past one of ours
    assert intel.accounts == (ATTACKER,)


def test_pull_keeps_funding_sources_in_the_store(tmp_path: Path) -> None:
    from breakglass.intel.feed import pull_sources, read_store

    (tmp_path / "a.json").write_text(json.dumps(signed(funding=PATH)), encoding="utf-8")
    pull_sources([source(file="a.json", ttl_hours=48)], tmp_path, tmp_path / "intel.json", now_ms=NOW_MS)
    stored = {(i.kind, i.value) for i in read_store(tmp_path / "intel.json")}
    assert {("funding", HOP), ("funding", MIXER)} <= stored
