"""intel.export: an incident closed as a true positive is exported as a signed bundle by the running
stage, without anyone running a command; one closed as a false positive is not (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.app import build_app
from breakglass.clock import SystemClock
from breakglass.config import load_config
from breakglass.domain import Severity
from breakglass.incidents.service import IncidentService
from breakglass.incidents.states import IncidentState, Resolution
from breakglass.intel.bundle import parse_indicators
from breakglass.intel.signing import verify_bundle
from breakglass.messages.incidents import IncidentChange
from breakglass.respond.signer import LocalSigner
from breakglass.store.outbox import in_transaction, transaction
from breakglass.testing import make_finding

KEY = "0x" + "e5" * 32
ATTACKER = "0x" + "ab" * 20


async def _open(app_store: object, service: IncidentService, tag: str) -> str:
    finding = make_finding(f"drain-{tag}", block=100, severity=Severity.CRITICAL, tx_hash="0x" + "0f" * 32,
                           evidence={"attacker": ATTACKER})  # fmt: skip
    async with transaction(app_store.sessions) as session:  # type: ignore[attr-defined]
        attached = await service.attach_finding(session, finding, group_key=tag, group_labels={},
                                                window_ms=60_000)  # fmt: skip
    return attached.incident.id


async def test_a_true_positive_closed_is_exported_and_a_false_positive_is_not(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTEL_KEY", KEY)
    path = tmp_path / "bg.yaml"
    path.write_text(f"protocol: venue-a\nstore: {{url: '{migrated_url}'}}\n"
                    "intel: {signer: {env: INTEL_KEY}, export: {folder: shared, chain: false}}\n",
                    encoding="utf-8")  # fmt: skip
    app = build_app(load_config(path))
    exporter = app.components.intel_export
    store = app.components.store
    service = IncidentService(SystemClock(), protocol="venue-a")
    stop = asyncio.Event()
    await app.start()
    app.subscribe()
    task = asyncio.create_task(exporter.run(stop))
    try:
        real, benign = await _open(store, service, "real"), await _open(store, service, "benign")
        for incident, resolution in ((benign, Resolution.FALSE_POSITIVE), (real, Resolution.TRUE_POSITIVE)):

            async def close(session: AsyncSession, i: str = incident, r: Resolution = resolution) -> object:
                return await service.transition(session, i, IncidentState.CLOSED, actor="alice", resolution=r)

            await in_transaction(store.sessions, app.bus, close)
        bundle_file = tmp_path / "shared" / f"{real}.json"
        deadline = time.monotonic() + 30
        while not bundle_file.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
        assert verify_bundle(bundle) == LocalSigner.from_key(KEY).address
        assert ("account", ATTACKER) in {(i.kind, i.value) for i in parse_indicators(bundle)}
        assert not (tmp_path / "shared" / f"{benign}.json").exists()
        assert await exporter.handle(IncidentChange(benign, "state", "closed")) is None
    finally:
        stop.set()
        await task
        await app.close()


def test_export_without_a_signer_is_a_configuration_error(tmp_path: Path) -> None:
    from breakglass.errors import ConfigError

    path = tmp_path / "bg.yaml"
    path.write_text("intel: {export: {folder: shared}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "intel.signer" in info.value.issues[0].message
