"""Exporting a confirmed incident as a signed STIX bundle: ``breakglass intel export`` and the
function an incident's confirmation can call (``export_incident``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.config import LoadedConfig
from breakglass.errors import IntelError
from breakglass.incidents.service import IncidentService
from breakglass.intel.bundle import IncidentIntel, build_bundle
from breakglass.intel.gather import ChainReader, enrich, intel_from_timeline
from breakglass.intel.signing import BundleSigner, sign_bundle
from breakglass.logs import Redactor
from breakglass.timeline import TimelineKind

__all__ = ["export_incident", "incident_intel", "load_intel_signer", "protocol_addresses", "write_bundle"]


def protocol_addresses(config: LoadedConfig) -> list[str]:
    """Our own contracts and deployer: never an indicator of anyone."""
    addresses = [record.address for record in config.contracts.values()]
    if config.deployment is not None:
        addresses += [record.address for record in config.deployment.contracts.values()]
        if config.deployment.deployer:
            addresses.append(config.deployment.deployer)
    return addresses


async def incident_intel(
    session: AsyncSession,
    service: IncidentService,
    incident_id: str,
    config: LoadedConfig,
    *,
    chain: ChainReader | None = None,
) -> IncidentIntel:
    """What ``incident_id`` tells others: from its timeline, completed from ``chain`` when given."""
    incident = await service.get(session, incident_id)
    timeline = await service.timeline(session, incident_id)
    chain_id = config.chain_id
    if chain_id is None:
        chain_id = next(
            (
                int(e.data["chain_id"])
                for e in timeline
                if e.kind is TimelineKind.FINDING and e.data.get("chain_id")
            ),
            0,
        )
    ours = protocol_addresses(config)
    intel = intel_from_timeline(incident, timeline, chain_id=chain_id, protocol_addresses=ours)
    if chain is not None:
        intel = await enrich(intel, chain, protocol_addresses=ours)
    return intel


def load_intel_signer(config: LoadedConfig, redactor: Redactor) -> BundleSigner:
    """The key of ``intel.signer``, registered with ``redactor`` before any use."""
    from breakglass.errors import ResponseError
    from breakglass.respond.signer import load_local_key

    key = config.settings.intel.signer
    if key is None:
        raise IntelError("intel.signer is not configured: a bundle must be signed to be trusted")
    try:
        return load_local_key(key, config.path.parent, redactor)
    except ResponseError as exc:
        raise IntelError(exc.message.replace("responder.guardian", "intel.signer")) from None


async def export_incident(
    session: AsyncSession,
    service: IncidentService,
    incident_id: str,
    config: LoadedConfig,
    signer: BundleSigner,
    *,
    now_ms: int,
    chain: ChainReader | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """The signed bundle of ``incident_id`` (written to ``out`` when given)."""
    intel = await incident_intel(session, service, incident_id, config, chain=chain)
    producer = config.settings.intel.producer or config.settings.protocol
    bundle = sign_bundle(build_bundle(intel, producer=producer, now_ms=now_ms), signer)
    if out is not None:
        write_bundle(out, bundle)
    return bundle


def write_bundle(path: Path, bundle: dict[str, Any]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bundle, indent=2, sort_keys=True) + "\n", encoding="utf-8")
