"""An incident's indicators as a STIX 2.1 bundle, and back.

STIX 2.1 has no observable for an EVM account or contract, so patterns use custom observable types
(``x-evm-account:address``, ``x-evm-contract:code_hash``, ``x-evm-transaction:hash``), lower-case hex,
and every object carries ``x_breakglass_chain_id``. The bundle holds: the producer's identity, one
indicator per attacker account, attack contract, code hash and exploit transaction (with the kill-chain
phase it belongs to: funding, setup, exploitation), and a report tying them to the incident.

Funding sources (the hops that paid an attacker account, up to the mixer or flagged address the set-up
monitor started from) are account indicators too, but marked ``x_breakglass_role: funding-source``
(indicator type ``anonymization``, phase ``funding``, ``x_breakglass_funding_hop``: 1 paid the attacker
directly), with a ``funded-by`` relationship from each account to the one that paid it. They are not
attackers: a mixer pays honest users too, so ``parse_indicators`` reads them back as kind ``funding``,
never ``account``. ``parse_indicators`` reads the indicators back from any bundle that uses these
patterns, whoever made it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import stix2
from stix2.exceptions import STIXError

from breakglass.errors import IntelError

__all__ = [
    "FUNDING_ROLE",
    "KILL_CHAIN",
    "AttackContract",
    "IncidentIntel",
    "IndicatorKind",
    "SharedIndicator",
    "build_bundle",
    "parse_indicators",
]

KILL_CHAIN = "breakglass-defi-exploit"
"""Kill-chain name of the phases: funding, setup, exploitation."""
IndicatorKind = Literal["account", "code_hash", "transaction", "funding"]
FUNDING_ROLE = "funding-source"
_PATTERNS: dict[IndicatorKind, str] = {
    "account": "x-evm-account:address",
    "code_hash": "x-evm-contract:code_hash",
    "transaction": "x-evm-transaction:hash",
}
_PATTERN = re.compile(
    r"^\[(x-evm-account:address|x-evm-contract:code_hash|x-evm-transaction:hash) = '(0x[0-9a-f]+)'\]$"
)
_LENGTHS: dict[IndicatorKind, int] = {"account": 42, "code_hash": 66, "transaction": 66, "funding": 42}
_NAMESPACE = uuid.UUID("6f1b6bfa-6a43-4b0e-9c3e-5d1d3f0b8a18")
"""Identity ids are uuid5(this, producer name): the same producer has the same id in every bundle."""
_CONFIDENCE = {"critical": 90, "high": 75, "medium": 50, "low": 30, "info": 15}


@dataclass(frozen=True, slots=True)
class AttackContract:
    address: str
    code_hash: str | None = None
    """keccak256 of its runtime code"""
    selectors: tuple[str, ...] = ()
    """its dispatcher's function selectors (0x + 8 hex)"""
    deployer: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentIntel:
    """What an incident tells others: who attacked, with what, and where it shows on chain."""

    incident_id: str
    title: str
    protocol: str
    chain_id: int
    severity: str
    detected_at_ms: int
    accounts: tuple[str, ...] = ()
    contracts: tuple[AttackContract, ...] = ()
    transactions: tuple[str, ...] = ()
    funding: tuple[tuple[str, ...], ...] = ()
    """funding paths: an attacker account, its funder, ... up to the mixer or flagged source"""


@dataclass(frozen=True, slots=True)
class SharedIndicator:
    """One indicator read from a bundle."""

    kind: IndicatorKind
    value: str
    stix_id: str
    name: str
    chain_id: int | None
    confidence: int | None
    valid_from_ms: int
    valid_until_ms: int | None
    phases: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()
    incident: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _stamp(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    text = str(value).replace("Z", "+00:00")
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def build_bundle(intel: IncidentIntel, *, producer: str, now_ms: int) -> dict[str, Any]:
    """The unsigned STIX 2.1 bundle of ``intel`` as JSON-ready data (``signing.sign_bundle`` signs it)."""
    identity = stix2.Identity(
        id=f"identity--{uuid.uuid5(_NAMESPACE, producer)}",
        name=producer,
        identity_class="organization",
        sectors=["financial-services"],
        created=_stamp(0),
        modified=_stamp(0),
    )
    chain = {"x_breakglass_chain_id": intel.chain_id}
    common: dict[str, Any] = {
        "created_by_ref": identity.id,
        "created": _stamp(now_ms),
        "modified": _stamp(now_ms),
        "valid_from": _stamp(intel.detected_at_ms),
        "pattern_type": "stix",
        "confidence": _CONFIDENCE.get(intel.severity, 50),
        "allow_custom": True,
        "x_breakglass_incident": intel.incident_id,
        **chain,
    }

    def indicator(
        kind: IndicatorKind, value: str, name: str, phase: str, types: list[str] | None = None, **extra: Any
    ) -> stix2.Indicator:
        return stix2.Indicator(
            name=name,
            description=f"{name}, seen in {intel.protocol}'s incident {intel.incident_id} ({intel.title}) "
            f"on chain {intel.chain_id}",
            pattern=f"[{_PATTERNS[kind]} = '{value.lower()}']",
            indicator_types=types
            or (["malicious-activity"] if kind != "account" else ["malicious-activity", "attribution"]),
            kill_chain_phases=[stix2.KillChainPhase(kill_chain_name=KILL_CHAIN, phase_name=phase)],
            **common,
            **extra,
        )

    indicators: list[stix2.Indicator] = []
    for account in dict.fromkeys(a.lower() for a in intel.accounts):
        indicators.append(indicator("account", account, f"attacker account {account}", "setup"))
    for contract in intel.contracts:
        extra: dict[str, Any] = {"x_breakglass_role": "attack-contract"}
        if contract.selectors:
            extra["x_breakglass_selectors"] = list(contract.selectors)
        if contract.deployer:
            extra["x_breakglass_deployer"] = contract.deployer.lower()
        address = contract.address.lower()
        indicators.append(indicator("account", address, f"attack contract {address}", "setup", **extra))
        if contract.code_hash:
            name = f"attack contract code {contract.code_hash.lower()}"
            indicators.append(indicator("code_hash", contract.code_hash, name, "setup", **extra))
    for tx in dict.fromkeys(t.lower() for t in intel.transactions):
        indicators.append(indicator("transaction", tx, f"exploit transaction {tx}", "exploitation"))
    by_address = {str(i.pattern).split("'")[1]: i.id for i in indicators if "x-evm-account" in i.pattern}
    hops = _funding_hops(intel.funding, set(by_address))
    for address, hop in hops.items():
        source = indicator(
            "account", address, f"funding source {address}", "funding", ["anonymization"],
            x_breakglass_role=FUNDING_ROLE, x_breakglass_funding_hop=hop,
        )  # fmt: skip
        indicators.append(source)
        by_address[address] = source.id
    relationships = [
        stix2.Relationship(
            source_ref=by_address[funded],
            relationship_type="funded-by",
            target_ref=by_address[funder],
            description=f"{funded} was paid by {funder}",
            created_by_ref=identity.id,
            created=_stamp(now_ms),
            modified=_stamp(now_ms),
            allow_custom=True,
            **chain,
        )
        for funded, funder in _funding_edges(intel.funding)
        if funded in by_address and funder in by_address
    ]
    if not indicators:
        raise IntelError(f"incident {intel.incident_id} has no indicators to share", reason="empty")
    report = stix2.Report(
        name=f"{intel.protocol} incident {intel.incident_id}: {intel.title}",
        description=f"Indicators of the incident {intel.incident_id} on {intel.protocol} (chain "
        f"{intel.chain_id}, severity {intel.severity}), shared by {producer}.",
        report_types=["threat-report"],
        published=_stamp(now_ms),
        created=_stamp(now_ms),
        modified=_stamp(now_ms),
        created_by_ref=identity.id,
        object_refs=[identity.id, *(i.id for i in indicators), *(r.id for r in relationships)],
        confidence=common["confidence"],
        allow_custom=True,
        x_breakglass_incident=intel.incident_id,
        **chain,
    )
    bundle = stix2.Bundle(identity, *indicators, *relationships, report, allow_custom=True)
    data: dict[str, Any] = json.loads(bundle.serialize())
    return data


def _funding_edges(paths: tuple[tuple[str, ...], ...]) -> list[tuple[str, str]]:
    """(funded, funder) of every path, each once."""
    edges = [(p[i].lower(), p[i + 1].lower()) for p in paths for i in range(len(p) - 1)]
    return list(dict.fromkeys(e for e in edges if e[0] != e[1]))


def _funding_hops(paths: tuple[tuple[str, ...], ...], attackers: set[str]) -> dict[str, int]:
    """Funding source -> fewest hops from an attacker account; an address that is itself an indicated
    attacker account or contract stays one."""
    hops: dict[str, int] = {}
    for path in paths:
        for hop, address in enumerate((a.lower() for a in path[1:]), 1):
            if address not in attackers and hop < hops.get(address, hop + 1):
                hops[address] = hop
    return hops


def parse_indicators(bundle: Mapping[str, Any]) -> list[SharedIndicator]:
    """The EVM indicators of ``bundle`` (other objects are skipped); ``IntelError`` if it is not STIX."""
    try:
        parsed = stix2.parse(dict(bundle), allow_custom=True)
    except (STIXError, ValueError, TypeError, KeyError) as exc:
        raise IntelError(f"not a valid STIX 2.1 bundle: {exc}", reason="malformed") from None
    out: list[SharedIndicator] = []
    for obj in getattr(parsed, "objects", None) or ():
        if obj.get("type") != "indicator" or obj.get("pattern_type") != "stix" or obj.get("revoked"):
            continue
        match = _PATTERN.match(str(obj["pattern"]))
        if match is None:
            continue
        kind = next(k for k, p in _PATTERNS.items() if p == match.group(1))
        if kind == "account" and obj.get("x_breakglass_role") == FUNDING_ROLE:
            kind = "funding"  # paid an attacker; not one (a mixer pays honest users too)
        value = match.group(2)
        if len(value) != _LENGTHS[kind]:
            continue
        chain_id = obj.get("x_breakglass_chain_id")
        phases = tuple(
            p["phase_name"] for p in obj.get("kill_chain_phases", ()) if p["kill_chain_name"] == KILL_CHAIN
        )
        out.append(
            SharedIndicator(
                kind=kind,
                value=value,
                stix_id=str(obj["id"]),
                name=str(obj.get("name", "")),
                chain_id=int(chain_id) if isinstance(chain_id, int) else None,
                confidence=obj.get("confidence"),
                valid_from_ms=_ms(obj["valid_from"]),
                valid_until_ms=_ms(obj["valid_until"]) if obj.get("valid_until") else None,
                phases=phases,
                selectors=tuple(str(s) for s in obj.get("x_breakglass_selectors", ())),
                incident=obj.get("x_breakglass_incident"),
            )
        )
    return out
